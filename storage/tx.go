package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"activated/flow"
)

// tx implements flow.Tx over one engine transaction.
type tx struct {
	db       *DB
	btx      kvTx
	enqueued bool
	queued   int // net change of the queue bucket in this transaction
}

var _ flow.Tx = (*tx)(nil)

// checkLogin refuses logins that would break the login 0x00 … index keys.
func checkLogin(login string) error {
	if login == "" || strings.IndexByte(login, 0) >= 0 {
		return fmt.Errorf("invalid login %q", login)
	}
	return nil
}

func idxKey(login string, suffix []byte) []byte {
	k := make([]byte, 0, len(login)+1+len(suffix))
	k = append(append(append(k, login...), 0), suffix...)
	return k
}

// getJSON decodes the value under key into v; flow.ErrNotFound if absent.
func getJSON(b bucket, key []byte, v any) error {
	raw := b.Get(key)
	if raw == nil {
		return flow.ErrNotFound
	}
	return json.Unmarshal(raw, v)
}

func putJSON(b bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

// Dossiers.

func (t *tx) Dossier(login string) (flow.Dossier, error) {
	var d flow.Dossier
	if err := getJSON(t.btx.Bucket(bucketDossiers), []byte(login), &d); err != nil {
		return flow.Dossier{}, fmt.Errorf("dossier %s: %w", login, err)
	}
	return d, nil
}

func (t *tx) PutDossier(d flow.Dossier) error {
	if err := checkLogin(d.Login); err != nil {
		return fmt.Errorf("put dossier: %w", err)
	}
	if err := putJSON(t.btx.Bucket(bucketDossiers), []byte(d.Login), d); err != nil {
		return fmt.Errorf("put dossier %s: %w", d.Login, err)
	}
	return nil
}

func (t *tx) Dossiers(fn func(flow.Dossier) error) error {
	c := t.btx.Bucket(bucketDossiers).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var d flow.Dossier
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("dossier %s: %w", k, err)
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// Codes.

func (t *tx) PutCode(code string, c flow.Code) error {
	if err := checkLogin(c.Login); err != nil {
		return fmt.Errorf("put code: %w", err)
	}
	h, ok := t.db.keys.codeKey(code)
	if !ok {
		return fmt.Errorf("put code for %s: malformed code", c.Login)
	}
	var old flow.Code
	switch err := getJSON(t.btx.Bucket(bucketCodes), h, &old); {
	case errors.Is(err, flow.ErrNotFound):
	case err != nil:
		return fmt.Errorf("put code for %s: %w", c.Login, err)
	case old.Login != c.Login || old.Purpose != c.Purpose:
		return fmt.Errorf("put code for %s: the code is already bound to another login or purpose", c.Login)
	}
	if c.State == "" {
		c.State = flow.CodeLive
	}
	if err := t.storeCode(h, c); err != nil {
		return fmt.Errorf("put code for %s: %w", c.Login, err)
	}
	return nil
}

// storeCode writes c under h and keeps codeidx right: a live c supersedes
// the live code of its login and purpose and becomes the indexed one; a
// c that is not live leaves the index if it was there.
func (t *tx) storeCode(h []byte, c flow.Code) error {
	codes, idx := t.btx.Bucket(bucketCodes), t.btx.Bucket(bucketCodeIdx)
	ik := idxKey(c.Login, []byte(c.Purpose))
	cur := bytes.Clone(idx.Get(ik))
	switch {
	case c.State == flow.CodeLive:
		if cur != nil && !bytes.Equal(cur, h) {
			var prev flow.Code
			if err := getJSON(codes, cur, &prev); err == nil && prev.State == flow.CodeLive {
				prev.State = flow.CodeSuperseded
				if err := putJSON(codes, cur, prev); err != nil {
					return fmt.Errorf("supersede: %w", err)
				}
			} else if err != nil && !errors.Is(err, flow.ErrNotFound) {
				return fmt.Errorf("supersede: %w", err)
			}
		}
		if err := idx.Put(ik, h); err != nil {
			return err
		}
	case bytes.Equal(cur, h):
		if err := idx.Delete(ik); err != nil {
			return err
		}
	}
	return putJSON(codes, h, c)
}

func (t *tx) Code(code string) (flow.Code, error) {
	h, ok := t.db.keys.codeKey(code)
	if !ok {
		return flow.Code{}, fmt.Errorf("code: %w", flow.ErrNotFound)
	}
	var c flow.Code
	if err := getJSON(t.btx.Bucket(bucketCodes), h, &c); err != nil {
		return flow.Code{}, fmt.Errorf("code: %w", err)
	}
	return c, nil
}

func (t *tx) SetCodeState(code string, st flow.CodeState) error {
	h, ok := t.db.keys.codeKey(code)
	if !ok {
		return fmt.Errorf("set code state: %w", flow.ErrNotFound)
	}
	var c flow.Code
	if err := getJSON(t.btx.Bucket(bucketCodes), h, &c); err != nil {
		return fmt.Errorf("set code state: %w", err)
	}
	c.State = st
	if err := t.storeCode(h, c); err != nil {
		return fmt.Errorf("set code state for %s: %w", c.Login, err)
	}
	return nil
}

func (t *tx) EndCodes(login string, st flow.CodeState, purposes ...flow.Purpose) error {
	if st == flow.CodeLive {
		return fmt.Errorf("end codes of %s: the new state must not be live", login)
	}
	if err := checkLogin(login); err != nil {
		return fmt.Errorf("end codes: %w", err)
	}
	if len(purposes) == 0 {
		prefix := idxKey(login, nil)
		c := t.btx.Bucket(bucketCodeIdx).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			purposes = append(purposes, flow.Purpose(k[len(prefix):]))
		}
	}
	codes, idx := t.btx.Bucket(bucketCodes), t.btx.Bucket(bucketCodeIdx)
	for _, p := range purposes {
		h := bytes.Clone(idx.Get(idxKey(login, []byte(p))))
		if h == nil {
			continue
		}
		var c flow.Code
		if err := getJSON(codes, h, &c); err != nil {
			return fmt.Errorf("end codes of %s: %w", login, err)
		}
		c.State = st
		if err := t.storeCode(h, c); err != nil {
			return fmt.Errorf("end codes of %s: %w", login, err)
		}
	}
	return nil
}

func (t *tx) LiveCode(login string, p flow.Purpose) (flow.Code, error) {
	h := t.btx.Bucket(bucketCodeIdx).Get(idxKey(login, []byte(p)))
	if h == nil {
		return flow.Code{}, fmt.Errorf("live %s code of %s: %w", p, login, flow.ErrNotFound)
	}
	var c flow.Code
	if err := getJSON(t.btx.Bucket(bucketCodes), h, &c); err != nil {
		return flow.Code{}, fmt.Errorf("live %s code of %s: %w", p, login, err)
	}
	if c.State != flow.CodeLive {
		return flow.Code{}, fmt.Errorf("live %s code of %s: %w", p, login, flow.ErrNotFound)
	}
	return c, nil
}

// Outbox.

func (t *tx) Enqueue(m flow.Mail) (uint64, error) {
	if err := checkLogin(m.Login); err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	id, err := t.btx.Bucket(bucketOutbox).NextSequence()
	if err != nil {
		return 0, fmt.Errorf("enqueue %s mail for %s: %w", m.Kind, m.Login, err)
	}
	m.ID, m.State = id, flow.MailQueued
	if err := t.putMail(m); err != nil {
		return 0, fmt.Errorf("enqueue %s mail for %s: %w", m.Kind, m.Login, err)
	}
	key := u64(id)
	if err := t.btx.Bucket(bucketMailIdx).Put(idxKey(m.Login, key), nil); err != nil {
		return 0, fmt.Errorf("enqueue %s mail for %s: %w", m.Kind, m.Login, err)
	}
	t.enqueued = true
	return id, nil
}

// PutMail stores m again under its ID, which must exist (a state change).
func (t *tx) PutMail(m flow.Mail) error {
	if t.btx.Bucket(bucketOutbox).Get(u64(m.ID)) == nil {
		return fmt.Errorf("put mail %d: %w", m.ID, flow.ErrNotFound)
	}
	if err := checkLogin(m.Login); err != nil {
		return fmt.Errorf("put mail %d: %w", m.ID, err)
	}
	if err := t.putMail(m); err != nil {
		return fmt.Errorf("put mail %d: %w", m.ID, err)
	}
	return nil
}

// QueuedMails returns login's queued mails, oldest first, through the
// queueidx index: its past mails are not read.
func (t *tx) QueuedMails(login string) ([]flow.Mail, error) {
	prefix := idxKey(login, nil)
	var out []flow.Mail
	c := t.btx.Bucket(bucketQueueIdx).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+8 {
			continue
		}
		m, err := t.mail(binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			return nil, fmt.Errorf("queued mails of %s: %w", login, err)
		}
		if m.State == flow.MailQueued && m.Login == login {
			out = append(out, m)
		}
	}
	return out, nil
}

// putMail seals m under its ID and keeps the queue bucket and the
// queueidx index in step with its state.
func (t *tx) putMail(m flow.Mail) error {
	key := u64(m.ID)
	plain, err := json.Marshal(m)
	if err != nil {
		return err
	}
	sealed, err := t.db.keys.seal(key, plain)
	if err != nil {
		return err
	}
	if err := t.btx.Bucket(bucketOutbox).Put(key, sealed); err != nil {
		return err
	}
	queue, idx := t.btx.Bucket(bucketQueue), t.btx.Bucket(bucketQueueIdx)
	was := queue.Get(key) != nil
	switch {
	case m.State == flow.MailQueued && !was:
		t.queued++
	case m.State != flow.MailQueued && was:
		t.queued--
	}
	if login := queue.Get(key); len(login) > 0 {
		if err := idx.Delete(idxKey(string(login), key)); err != nil {
			return err
		}
	}
	if m.State != flow.MailQueued {
		return queue.Delete(key)
	}
	if err := idx.Put(idxKey(m.Login, key), nil); err != nil {
		return err
	}
	return queue.Put(key, []byte(m.Login))
}

// mail reads and unseals one outbox entry.
func (t *tx) mail(id uint64) (flow.Mail, error) {
	key := u64(id)
	sealed := t.btx.Bucket(bucketOutbox).Get(key)
	if sealed == nil {
		return flow.Mail{}, fmt.Errorf("mail %d: %w", id, flow.ErrNotFound)
	}
	plain, err := t.db.keys.open(key, sealed)
	if err != nil {
		return flow.Mail{}, fmt.Errorf("mail %d: %w", id, err)
	}
	var m flow.Mail
	if err := json.Unmarshal(plain, &m); err != nil {
		return flow.Mail{}, fmt.Errorf("mail %d: %w", id, err)
	}
	return m, nil
}

func (t *tx) Mails(login string) ([]flow.Mail, error) {
	prefix := idxKey(login, nil)
	var out []flow.Mail
	c := t.btx.Bucket(bucketMailIdx).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+8 {
			continue
		}
		m, err := t.mail(binary.BigEndian.Uint64(k[len(prefix):]))
		if err != nil {
			return nil, fmt.Errorf("mails of %s: %w", login, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Audit log.

func (t *tx) Audit(e flow.Event) error {
	b := t.btx.Bucket(bucketAudit)
	if e.Seq == 0 {
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("audit %s: %w", e.Action, err)
		}
		e.Seq = seq
	} else {
		if b.Get(u64(e.Seq)) != nil {
			return fmt.Errorf("audit %s: event %d exists (the log is append-only)", e.Action, e.Seq)
		}
		if e.Seq > b.Sequence() {
			if err := b.SetSequence(e.Seq); err != nil {
				return fmt.Errorf("audit %s: %w", e.Action, err)
			}
		}
	}
	key := u64(e.Seq)
	if err := putJSON(b, key, e); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	if err := t.btx.Bucket(bucketAuditIdx).Put(idxKey(e.Login, key), nil); err != nil {
		return fmt.Errorf("audit %s: index: %w", e.Action, err)
	}
	return nil
}

func (t *tx) Events(after uint64, fn func(flow.Event) error) error {
	if after == math.MaxUint64 {
		return nil
	}
	c := t.btx.Bucket(bucketAudit).Cursor()
	for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
		var e flow.Event
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("audit event %x: %w", k, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// LoginEvents reads the auditidx keys of login (login 0x00 BE seq): the
// exact key length keeps "jdupont" from matching "jdupont2" or a login
// that contains 0x00.
func (t *tx) LoginEvents(login string, fn func(flow.Event) error) error {
	prefix := idxKey(login, nil)
	audit := t.btx.Bucket(bucketAudit)
	c := t.btx.Bucket(bucketAuditIdx).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) != len(prefix)+8 {
			continue
		}
		seq := k[len(prefix):]
		v := audit.Get(seq)
		if v == nil {
			return fmt.Errorf("events of %s: indexed event %d is missing", login, binary.BigEndian.Uint64(seq))
		}
		var e flow.Event
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("events of %s: audit event %x: %w", login, seq, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}
