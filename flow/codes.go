package flow

// The rules of codes that outlive one call: a code that stops working
// takes its queued mails with it. Storage only stores (Tx.PutCode keeps
// one live code per login and purpose); flow decides what follows, with
// its own clock.

// putCode stores a new live code: the live one of the same login and
// purpose is superseded, and the mails that carry it are cancelled.
func (s *Service) putCode(tx Tx, code string, c Code) error {
	if err := tx.PutCode(code, c); err != nil {
		return err
	}
	return s.cancelStale(tx, c.Login)
}

// endCodes moves login's live codes of purposes (all when none is given)
// to st and cancels the mails that carry them.
func (s *Service) endCodes(tx Tx, login string, st CodeState, purposes ...Purpose) error {
	if err := tx.EndCodes(login, st, purposes...); err != nil {
		return err
	}
	return s.cancelStale(tx, login)
}

// setCodeState moves one code of login to st and cancels the mails that
// carry it.
func (s *Service) setCodeState(tx Tx, login, code string, st CodeState) error {
	if err := tx.SetCodeState(code, st); err != nil {
		return err
	}
	return s.cancelStale(tx, login)
}

// cancelStale cancels login's queued mails whose code no longer works
// (superseded, used, revoked, finished): a dead code must not reach the
// user later, after an SMTP outage say. Only the queued mails are read.
func (s *Service) cancelStale(tx Tx, login string) error {
	queued, err := tx.QueuedMails(login)
	if err != nil {
		return err
	}
	for _, m := range queued {
		if m.Code == "" {
			continue
		}
		st := CodeState("unknown")
		if norm, ok := NormalizeCode(m.Code); ok {
			if rec, err := tx.Code(norm); err == nil {
				st = rec.State
			}
		}
		if st == CodeLive {
			continue
		}
		m.State, m.Code, m.LastError = MailCancelled, "", "code "+string(st)+" before delivery"
		if err := tx.PutMail(m); err != nil {
			return err
		}
		err := tx.Audit(Event{Time: s.clock.Now(), Actor: "system", Action: "mail-cancelled", Login: login,
			Detail: string(m.Kind) + " " + m.To + ": " + m.LastError})
		if err != nil {
			return err
		}
	}
	return nil
}
