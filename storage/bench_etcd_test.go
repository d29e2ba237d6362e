package storage_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"activated/flow"
	"activated/internal/flowtest"
	"activated/storage"
)

// engines are the stores the benchmarks compare: a bbolt file, and a
// three-member etcd cluster on loopback.
var engines = []struct {
	name string
	open func(b *testing.B) *storage.DB
}{
	{"bbolt", func(b *testing.B) *storage.DB {
		db, err := storage.Open(filepath.Join(b.TempDir(), "activated.db"), storage.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}},
	{"etcd", func(b *testing.B) *storage.DB { db, _ := openEtcd(b); return db }},
}

// BenchmarkStep is the write of one wizard step: one Update that reads the
// dossier, changes a choice, writes it back and appends an audit event.
//
//	go test -run XXX -bench 'Step|Activation' ./storage/
func BenchmarkStep(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			db := e.open(b)
			now := time.Now()
			put := func(tx flow.Tx) error {
				return tx.PutDossier(flow.Dossier{Login: "alice", RecoveryMails: []string{"alice@example.net"}, Deadline: now.Add(24 * time.Hour)})
			}
			if err := db.Update(put); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				err := db.Update(func(tx flow.Tx) error {
					d, err := tx.Dossier("alice")
					if err != nil {
						return err
					}
					d.PublicDirectory = !d.PublicDirectory
					if err := tx.PutDossier(d); err != nil {
						return err
					}
					return tx.Audit(flow.Event{Time: now, Actor: "user", Action: "directory", Login: "alice"})
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkActivation runs whole activations through flow.Service (staff
// invitation, open with the code, charter, directory, mailbox, password),
// the directory in memory: one user at a time, then 8 at once.
func BenchmarkActivation(b *testing.B) {
	for _, e := range engines {
		for _, users := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/users=%d", e.name, users), func(b *testing.B) {
				db := e.open(b)
				dir := flowtest.NewDirectory()
				cfg := flow.Config{Charter: []byte("# Charte\n"), Institution: "Université Exemple"}
				if e.name == "etcd" {
					cfg.Locks = db
				}
				svc, err := flow.New(cfg, db, dir, flowtest.NewClock(time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)), nil)
				if err != nil {
					b.Fatal(err)
				}
				var n atomic.Int64
				b.SetParallelism(users)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := activate(svc, db, dir, fmt.Sprintf("u%06d", n.Add(1))); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "activations/s")
			})
		}
	}
}

func activate(svc *flow.Service, db *storage.DB, dir *flowtest.Directory, login string) error {
	ctx := context.Background()
	dir.Put(flow.Account{DN: "uid=" + login + ",ou=people,dc=example,dc=org", Login: login, GivenName: "Alex", Surname: "Martin",
		RecoveryMails: []string{login + "@perso.example.net"}, Affiliations: []string{"student"}})
	if _, err := svc.Invite(ctx, login, false, flow.Client{Actor: "staff:bench"}); err != nil {
		return err
	}
	var code string
	err := db.View(func(tx flow.Tx) error {
		ms, err := tx.Mails(login)
		if err == nil && len(ms) > 0 {
			code = ms[0].Code
		}
		return err
	})
	if err != nil {
		return err
	}
	user := flow.Client{Remote: "192.0.2.1:4242", Lang: "fr"}
	x, err := svc.Open(ctx, code, user)
	if err != nil {
		return err
	}
	defer x.Close()
	for _, step := range []func() error{
		func() error { return x.AcceptCharter(true) },
		func() error { return x.ChooseDirectory(false) },
		func() error { return x.ChooseMailbox("", false) },
		func() error { return x.Finish(ctx, "correct horse battery staple violet") },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}
