package flow

// Metrics is what the procedure counts. No argument carries a login, an
// address or a code.
type Metrics interface {
	StepEntered(step string) // a user reached step (Step.String())
	Activated()              // an account was activated
}

type noMetrics struct{}

func (noMetrics) StepEntered(string) {}
func (noMetrics) Activated()         {}

// EnterLogin counts a user arriving at step 1: a wizard started without a
// code. Every other step is counted when a dossier moves on to it.
func (s *Service) EnterLogin() { s.cfg.Metrics.StepEntered(StepLogin.String()) }

// steppedStore is the store as the service uses it: after each committed
// transaction, every dossier whose next step moved forward counts as
// entering it, wherever in the procedure the write happened.
type steppedStore struct {
	Store
	m Metrics
}

func (s steppedStore) Update(fn func(Tx) error) error { return s.counted(s.Store.Update, fn) }

// Batch keeps the store's shared commits (Batcher) when it has them.
func (s steppedStore) Batch(fn func(Tx) error) error {
	if b, ok := s.Store.(Batcher); ok {
		return s.counted(b.Batch, fn)
	}
	return s.Update(fn)
}

func (s steppedStore) counted(run func(func(Tx) error) error, fn func(Tx) error) error {
	var entered []Step
	err := run(func(tx Tx) error {
		entered = entered[:0] // a store may run fn again
		return fn(steppedTx{tx, &entered})
	})
	if err != nil {
		return err
	}
	for _, st := range entered {
		s.m.StepEntered(st.String())
		if st == StepDone {
			s.m.Activated()
		}
	}
	return nil
}

type steppedTx struct {
	Tx
	entered *[]Step
}

func (t steppedTx) PutDossier(d Dossier) error {
	var before Step // none: a new dossier
	if old, err := t.Tx.Dossier(d.Login); err == nil {
		before = old.Next()
	}
	if err := t.Tx.PutDossier(d); err != nil {
		return err
	}
	if after := d.Next(); after > before {
		*t.entered = append(*t.entered, after)
	}
	return nil
}
