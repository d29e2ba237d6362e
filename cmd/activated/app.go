package main

import (
	"cmp"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"activated/directory"
	"activated/flow"
	"activated/hostkeys"
	"activated/internal/metrics"
	"activated/mailer"
	"activated/sshapp"
	"activated/staff"
	"activated/staff/dashboard"
	"activated/storage"
)

//go:embed charter-demo.md
var demoCharter []byte

// options are the app's settings no config key holds, given to newApp by
// the command that runs it (serve, demo) or by a test. The zero value is
// what serve runs with.
type options struct {
	// clock is the time every part of the server reads (deadlines, rate
	// limits, the outbox, the sweep); nil: the system clock. Tests set one
	// to let a code expire.
	clock flow.Clock
	// worker tunes the mail worker's retries (zero fields: the mailer's
	// defaults); its RetryFor always comes from the config. Tests shorten
	// the delays so an SMTP outage plays out in a second.
	worker mailer.WorkerOptions
	// shutdownGrace is how long a stop waits for open sessions to end
	// before closing them; 0: defaultShutdownGrace.
	shutdownGrace time.Duration
	// ephemeral: the data is deleted when the app stops (the demo), and
	// the users it cuts off are told so.
	ephemeral bool
	// etcdLeaseTTL is how long a dead node's dossier locks and mail
	// claims outlive it; 0: the storage's default (10s).
	etcdLeaseTTL time.Duration
	// queueEvery is how often, on etcd, the outbox gauge is read again
	// (other nodes change the outbox too); 0: defaultQueueEvery.
	queueEvery time.Duration
}

const defaultQueueEvery = 15 * time.Second

const defaultShutdownGrace = 10 * time.Second

// app is every part of a running server, built from one Config.
type app struct {
	cfg    *Config
	opts   options
	log    *slog.Logger
	db     *storage.DB
	dir    *directory.Directory
	svc    *flow.Service
	worker *mailer.Worker
	ssh    *sshapp.Server

	metrics     *metrics.Metrics
	metricsAddr net.Addr // where /metrics listens, once run listens (nil: off)
	notify      notifier // systemd, when it started us
}

func (c *Config) directoryConfig() (directory.Config, error) {
	pw, err := c.LDAPBindPassword()
	if err != nil {
		return directory.Config{}, err
	}
	return directory.Config{
		URL: c.LDAP.URL, BindDN: c.LDAP.BindDN, BindPassword: pw, StartTLS: c.LDAP.StartTLS, CAFile: c.LDAP.CAFile,
		Timeout: c.LDAP.Timeout.Duration, PeopleBase: c.LDAP.PeopleBase, Filter: c.LDAP.Filter, ConsentLabel: c.LDAP.ConsentLabel,
		MailDomain: c.LDAP.MailDomain,
		Attrs:      c.LDAP.Attributes,
	}, nil
}

func (c *Config) mailerConfig(logTo io.Writer) (mailer.Config, error) {
	pw, err := c.SMTPPassword()
	if err != nil {
		return mailer.Config{}, err
	}
	return mailer.Config{
		Transport: c.Mail.Transport, SMTPURL: c.Mail.SMTPURL, SMTPUsername: c.Mail.SMTPUsername, SMTPPassword: pw,
		CAFile: c.Mail.CAFile, From: c.Mail.From, Maildir: c.Mail.Maildir,
		PublicHost: c.Activation.PublicHost, PublicPort: c.Activation.PublicPort, Location: c.Location(),
		Institution: c.Activation.Institution, Helpdesk: c.Activation.Helpdesk, Services: c.Activation.Services, LogWriter: logTo,
	}, nil
}

func (c *Config) charter() ([]byte, error) {
	if c.Activation.CharterFile == "" {
		return demoCharter, nil
	}
	b, err := os.ReadFile(c.Activation.CharterFile)
	if err != nil {
		return nil, fmt.Errorf("activation.charter_file: %w", err)
	}
	return b, nil
}

// newApp opens the store and builds every part; nothing listens yet.
// mailLog receives the messages of the "log" mail transport.
func newApp(cfg *Config, opts options, log *slog.Logger, mailLog io.Writer) (_ *app, err error) {
	if opts.clock == nil {
		opts.clock = flow.SystemClock{}
	}
	if opts.shutdownGrace == 0 {
		opts.shutdownGrace = defaultShutdownGrace
	}
	a := &app{cfg: cfg, opts: opts, log: log, metrics: metrics.New(versionString()), notify: newNotifier(os.Getenv, os.Getpid())}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	charter, err := cfg.charter()
	if err != nil {
		return nil, err
	}
	if a.db, err = cfg.openStorage(opts.etcdLeaseTTL, a.metrics.QueueChanged); err != nil {
		return nil, err
	}
	queued, err := a.db.QueueLen()
	if err != nil {
		return nil, err
	}
	a.metrics.SetQueued(queued)
	dcfg, err := cfg.directoryConfig()
	if err != nil {
		return nil, err
	}
	dcfg.Metrics = a.metrics
	if a.dir, err = directory.New(dcfg); err != nil {
		return nil, err
	}
	mcfg, err := cfg.mailerConfig(mailLog)
	if err != nil {
		return nil, err
	}
	tr, err := mailer.NewTransport(mcfg)
	if err != nil {
		return nil, err
	}
	wopts := opts.worker
	wopts.RetryFor = cfg.Mail.RetryFor.Duration
	wopts.Metrics = a.metrics
	a.worker = mailer.NewWorker(a.db, a.db.Enqueued(), tr, mailer.NewRenderer(mcfg), opts.clock, log, wopts)
	fcfg := flow.Config{
		Location: cfg.Location(), StaffAffiliations: cfg.Activation.StaffAffiliations, Charter: charter,
		Password:    flow.PasswordPolicy{MinLength: cfg.Password.MinLength, MaxLength: cfg.Password.MaxLength, MinScore: cfg.Password.MinScore},
		Institution: cfg.Activation.Institution, DefaultLang: cfg.Activation.Language, MailsPerHour: cfg.Activation.MailsPerHour,
		Metrics:         a.metrics,
		LoginsPerMinute: cfg.Activation.LoginsPerMinute,
		Helpdesk:        cfg.Activation.Helpdesk,
	}
	if cfg.Storage.Backend == "etcd" { // other nodes share the store
		fcfg.Locks = a.db
		fcfg.Limits = a.db.Counter()
	}
	a.svc, err = flow.New(fcfg, a.db, a.dir, opts.clock, log)
	if err != nil {
		return nil, err
	}
	if cfg.SSH.ConnectionsPerMinute != 0 {
		log.Warn("ssh.connections_per_minute is no longer used: connections are capped by ssh.max_startups and ssh.max_startups_per_source")
	}
	key, err := hostkeys.LoadOrCreate(cfg.SSH.HostKey)
	if err != nil {
		return nil, err
	}
	a.ssh, err = sshapp.New(sshapp.Config{
		HostKey: key, StaffKeysFile: cfg.SSH.StaffAuthorizedKeys,
		IdleTimeout: cfg.SSH.IdleTimeout.Duration, MaxTimeout: cfg.SSH.MaxTimeout.Duration,
		HandshakeTimeout: cfg.SSH.HandshakeTimeout.Duration, MaxSessions: cfg.SSH.MaxSessions,
		MaxStartups: cfg.SSH.MaxStartups, MaxStartupsPerSource: cfg.SSH.MaxStartupsPerSource,
		PublicHost: cfg.Activation.PublicHost, PublicPort: cfg.Activation.PublicPort, Services: cfg.Activation.Services,
		DefaultLang: cfg.Activation.Language, Ephemeral: opts.ephemeral, Log: log, Metrics: a.metrics,
		Dashboard: func(ctx context.Context, who sshapp.Staff) tea.Model {
			return dashboard.New(ctx, a.svc, staffIdentity(who))
		},
	}, a.svc, func(ctx context.Context, who sshapp.Staff, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
		if len(args) == 0 {
			args = []string{"help"}
		}
		return staff.Run(ctx, a.svc, staffIdentity(who), args, stdin, stdout, stderr)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func staffIdentity(who sshapp.Staff) staff.Identity {
	return staff.Identity{Name: who.Name, Fingerprint: who.Fingerprint, Remote: who.Remote}
}

// run serves until ctx ends, then shuts down in order: no new sessions,
// open sessions closed, the mail worker stopped, the store closed.
// ready, if set, is called with the listening address. Under systemd it
// says READY=1 once it listens, STOPPING=1 when it starts to stop, and
// pings the watchdog while the store answers.
func (a *app) run(ctx context.Context, ready func(net.Addr)) error {
	ln, err := systemdListener(os.Getenv, os.Getpid(), 3)
	if err != nil {
		return err
	}
	if ln != nil {
		a.log.Info("ssh: listening on the socket systemd passed (activated.socket); ssh.listen is not used")
	} else if ln, err = net.Listen("tcp", a.cfg.SSH.Listen); err != nil {
		return fmt.Errorf("ssh.listen: %w", err)
	}
	var web *http.Server
	if a.cfg.Metrics.Listen != "" {
		mln, err := net.Listen("tcp", a.cfg.Metrics.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics.listen: %w", err)
		}
		a.metricsAddr = mln.Addr()
		web = &http.Server{Handler: a.metrics.Handler(a.readiness()...), ReadHeaderTimeout: 10 * time.Second}
		go web.Serve(mln)
		a.log.Info("metrics listening", "addr", mln.Addr().String())
	}
	bln, err := listenBackup(a.cfg)
	if err != nil {
		ln.Close()
		if web != nil {
			web.Close()
		}
		return err
	}
	go serveBackups(bln, a.db, a.log)
	if ready != nil {
		ready(ln.Addr())
	}
	a.log.Info("listening", "addr", ln.Addr().String())
	bg, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.worker.Run(bg) })
	wg.Go(func() { a.sweep(bg) })
	if a.cfg.Storage.Backend == "etcd" { // bbolt tells each change (QueueChanged)
		wg.Go(func() { a.followQueue(bg, cmp.Or(a.opts.queueEvery, defaultQueueEvery)) })
	}
	wg.Go(func() { a.notify.keepAlive(bg, func() bool { return a.db.Ping() == nil }) })
	wg.Go(func() { // the dashboards follow the other nodes' writes too
		for login := range a.db.Changes(bg) {
			a.svc.Changed(login)
		}
	})
	served := make(chan error, 1)
	go func() { served <- a.ssh.Serve(ln) }()
	if err := a.notify.notify("READY=1"); err != nil {
		a.log.Warn("systemd notify", "err", err)
	}
	select {
	case err = <-served:
	case <-ctx.Done():
		_ = a.notify.notify("STOPPING=1")
		a.log.Info("shutting down")
		// Staff commands get the shutdown grace to end; a wizard session still
		// open then is cut, which loses nothing (every step is saved and
		// the user comes back with the code). That is a normal stop.
		sctx, cancel := context.WithTimeout(context.Background(), a.opts.shutdownGrace)
		err = a.ssh.Shutdown(sctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			a.log.Info("closed the sessions still open", "grace", a.opts.shutdownGrace)
			err = nil
		}
		<-served
	}
	stop()
	wg.Wait()
	bln.Close() // removes the socket file
	if web != nil {
		web.Close()
	}
	a.close()
	if err != nil && !errors.Is(err, sshapp.ErrServerClosed) {
		return err
	}
	return nil
}

// readiness is what /readyz asks: the store and the directory.
func (a *app) readiness() []metrics.Check {
	return []metrics.Check{
		{Name: "storage", Run: func(context.Context) error { return a.db.Ping() }},
		{Name: "ldap", Run: a.dir.Ping},
	}
}

// followQueue sets the outbox gauge from the outbox every period: on etcd
// every node's mails are in it.
func (a *app) followQueue(ctx context.Context, period time.Duration) {
	every(ctx, period, func() {
		if n, err := a.db.QueueLen(); err == nil {
			a.metrics.SetQueued(n)
		}
	})
}

// every runs fn every period until ctx ends.
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// sweep deletes, hourly, code records a week past their deadline, mails
// sent, failed or cancelled more than mailRetention ago (the audit keeps
// what happened to them) and audit events older than
// storage.audit_retention.
func (a *app) sweep(ctx context.Context) {
	const mailRetention = 30 * 24 * time.Hour
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := a.db.Sweep(a.opts.clock.Now(), 7*24*time.Hour); err != nil {
			a.log.Error("sweep codes", "err", err)
		} else if n > 0 {
			a.log.Info("swept codes", "count", n)
		}
		if n, err := a.db.Prune(a.opts.clock.Now(), mailRetention); err != nil {
			a.log.Error("prune outbox", "err", err)
		} else if n > 0 {
			a.log.Info("pruned delivered and cancelled mails", "count", n)
		}
		if keep := a.cfg.Storage.AuditRetention.Duration; keep > 0 {
			if n, err := a.db.DeleteEventsBefore(a.opts.clock.Now().Add(-keep)); err != nil {
				a.log.Error("sweep audit events", "err", err)
			} else if n > 0 {
				a.log.Info("swept audit events", "count", n, "older_than", keep)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *app) close() {
	if a.dir != nil {
		a.dir.Close()
	}
	if a.svc != nil {
		if err := a.svc.FlushAudit(); err != nil {
			a.log.Error("audit: count of unknown logins", "err", err)
		}
	}
	if a.db != nil {
		a.db.Close()
	}
}
