package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"activated/flow"
)

// Due returns up to limit queued mails whose NextAttempt is not after now
// (a zero NextAttempt is due at once), oldest first. limit <= 0 means no
// limit.
//
// On etcd, each mail returned is claimed by this node until its attempt is
// recorded (Delivered, Retry, GiveUp) or the node dies: the mails another
// node claimed are left out.
func (db *DB) Due(now time.Time, limit int) ([]flow.Mail, error) {
	out, err := db.due(now, limit, nil)
	if err != nil || db.etcd == nil {
		return out, err
	}
	claimed, err := db.claim(out)
	if err != nil || len(claimed) == 0 {
		return nil, err
	}
	// Read them again: another node may have sent one between the first
	// read and the claim.
	ids := map[uint64]bool{}
	for _, m := range claimed {
		ids[m.ID] = true
	}
	out, err = db.due(now, 0, ids)
	for _, m := range out {
		delete(ids, m.ID)
	}
	for id := range ids {
		db.unclaim(id)
	}
	return out, err
}

// due reads the due mails, only those of ids when it is not nil.
func (db *DB) due(now time.Time, limit int, ids map[uint64]bool) ([]flow.Mail, error) {
	var out []flow.Mail
	err := db.eng.view(func(btx kvTx) error {
		out = nil
		t := &tx{db: db, btx: btx}
		c := btx.Bucket(bucketQueue).Cursor()
		for k, _ := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, _ = c.Next() {
			id := binary.BigEndian.Uint64(k)
			if ids != nil && !ids[id] {
				continue
			}
			m, err := t.mail(id)
			if err != nil {
				return err
			}
			if m.State == flow.MailQueued && !m.NextAttempt.After(now) {
				out = append(out, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("due mails: %w", err)
	}
	return out, nil
}

// Delivered records that mail id was sent at at: its code is dropped from
// the database and a "mail-sent" audit event is written in the same
// transaction.
func (db *DB) Delivered(id uint64, at time.Time) error {
	return db.finish(id, at, flow.MailSent, "", "mail-sent")
}

// GiveUp records that mail id will not be sent: its code is dropped and a
// "mail-failed" audit event is written. The failed try counts as an
// attempt.
func (db *DB) GiveUp(id uint64, at time.Time, reason string) error {
	return db.finish(id, at, flow.MailFailed, reason, "mail-failed")
}

func (db *DB) finish(id uint64, at time.Time, st flow.MailState, reason, action string) error {
	err := db.updateMail(id, func(t *tx, m *flow.Mail) error {
		m.State, m.Code = st, ""
		m.Attempts++ // the last try counts, successful or not
		detail := string(m.Kind) + " " + m.To
		if st == flow.MailSent {
			m.Sent = at
		} else {
			m.LastError = reason
			detail += ": " + reason
		}
		return t.Audit(flow.Event{Time: at, Actor: "system", Action: action, Login: m.Login, Detail: detail})
	})
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	return nil
}

// Retry records a failed attempt of mail id and when to try again.
func (db *DB) Retry(id uint64, next time.Time, reason string) error {
	err := db.updateMail(id, func(_ *tx, m *flow.Mail) error {
		m.Attempts++
		m.NextAttempt, m.LastError = next, reason
		return nil
	})
	if err != nil {
		return fmt.Errorf("retry: %w", err)
	}
	return nil
}

// updateMail applies fn to queued mail id and stores it back, in one
// transaction.
func (db *DB) updateMail(id uint64, fn func(*tx, *flow.Mail) error) error {
	defer db.unclaim(id)
	var t *tx
	err := db.eng.update(func(btx kvTx) error {
		t = &tx{db: db, btx: btx}
		m, err := t.mail(id)
		if err != nil {
			return err
		}
		if m.State != flow.MailQueued {
			return fmt.Errorf("mail %d is %s, not queued", id, m.State)
		}
		if err := fn(t, &m); err != nil {
			return err
		}
		if err := t.putMail(m); err != nil {
			return fmt.Errorf("mail %d: %w", id, err)
		}
		return nil
	})
	if err == nil {
		db.committed(t)
	}
	return err
}

// sweepBatch bounds the records one transaction of Sweep deletes (two
// writes each): an etcd transaction holds at most 128 operations.
const sweepBatch = 50

// Sweep deletes the code records whose Deadline+keep is before now, with
// their index entries, and returns how many it deleted.
func (db *DB) Sweep(now time.Time, keep time.Duration) (int, error) {
	return inBatches(func() (int, error) { return db.sweep(now, keep) })
}

// inBatches runs batch (one transaction deleting at most sweepBatch
// records) until it deletes fewer, and adds up what it deleted.
func inBatches(batch func() (int, error)) (int, error) {
	total := 0
	for {
		n, err := batch()
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

func (db *DB) sweep(now time.Time, keep time.Duration) (int, error) {
	var n int
	err := db.eng.update(func(btx kvTx) error {
		codes, idx := btx.Bucket(bucketCodes), btx.Bucket(bucketCodeIdx)
		var old [][]byte
		var recs []flow.Code
		c := codes.Cursor()
		for k, v := c.First(); k != nil && len(old) < sweepBatch; k, v = c.Next() {
			var rec flow.Code
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("code record: %w", err)
			}
			if rec.Deadline.Add(keep).Before(now) {
				old = append(old, bytes.Clone(k))
				recs = append(recs, rec)
			}
		}
		for i, k := range old {
			ik := idxKey(recs[i].Login, []byte(recs[i].Purpose))
			if bytes.Equal(idx.Get(ik), k) {
				if err := idx.Delete(ik); err != nil {
					return err
				}
			}
			if err := codes.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sweep codes: %w", err)
	}
	return n, nil
}

// Prune deletes the mails that left the queue (sent, failed or
// cancelled) and were created more than keep before now, with their index
// entries, and returns how many it deleted. The audit log keeps what
// happened to each. Mails are walked in ID (creation) order and the walk
// stops at the first one too recent, so a prune costs what it deletes.
func (db *DB) Prune(now time.Time, keep time.Duration) (int, error) {
	return inBatches(func() (int, error) { return db.prune(now, keep) })
}

// prune deletes at most sweepBatch mails (two writes each).
func (db *DB) prune(now time.Time, keep time.Duration) (int, error) {
	var n int
	err := db.eng.update(func(btx kvTx) error {
		t := &tx{db: db, btx: btx}
		outbox, queue, idx := btx.Bucket(bucketOutbox), btx.Bucket(bucketQueue), btx.Bucket(bucketMailIdx)
		type old struct {
			key   []byte
			login string
		}
		var gone []old
		c := outbox.Cursor()
		for k, _ := c.First(); k != nil && len(gone) < sweepBatch; k, _ = c.Next() {
			m, err := t.mail(binary.BigEndian.Uint64(k))
			if err != nil {
				return err
			}
			if !m.Created.Add(keep).Before(now) {
				break
			}
			if queue.Get(k) == nil && m.State != flow.MailQueued {
				gone = append(gone, old{bytes.Clone(k), m.Login})
			}
		}
		for _, g := range gone {
			if err := outbox.Delete(g.key); err != nil {
				return err
			}
			if err := idx.Delete(idxKey(g.login, g.key)); err != nil {
				return err
			}
		}
		n = len(gone)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return n, nil
}
