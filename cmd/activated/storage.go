package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"activated/storage"
)

// EtcdConfig builds the storage's etcd settings: TLS from the CA and
// client certificate files, the password from its file.
func (c *Config) EtcdConfig() (storage.EtcdConfig, error) {
	st := c.Storage
	cfg := storage.EtcdConfig{Endpoints: st.EtcdEndpoints, Prefix: st.EtcdPrefix, Username: st.EtcdUsername,
		Timeout: st.EtcdTimeout.Duration}
	if st.EtcdPasswordFile != "" {
		pw, err := readSecretFile(st.EtcdPasswordFile)
		if err != nil {
			return cfg, fmt.Errorf("storage.etcd_password_file: %w", err)
		}
		cfg.Password = pw
	}
	if st.EtcdCAFile == "" && st.EtcdCertFile == "" && !slices.ContainsFunc(st.EtcdEndpoints, func(e string) bool { return strings.HasPrefix(e, "https:") }) {
		return cfg, nil
	}
	cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if st.EtcdCAFile != "" {
		pem, err := os.ReadFile(st.EtcdCAFile)
		if err != nil {
			return cfg, fmt.Errorf("storage.etcd_ca_file: %w", err)
		}
		cfg.TLS.RootCAs = x509.NewCertPool()
		if !cfg.TLS.RootCAs.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("storage.etcd_ca_file: no PEM certificate in %s", st.EtcdCAFile)
		}
	}
	if st.EtcdCertFile != "" {
		cert, err := tls.LoadX509KeyPair(st.EtcdCertFile, st.EtcdKeyFile)
		if err != nil {
			return cfg, fmt.Errorf("storage.etcd_cert_file: %w", err)
		}
		cfg.TLS.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// openStorage opens the configured store; leaseTTL, when not 0, is how
// long a dead node's etcd locks outlive it.
// queueChanged, when not nil, is told how the outbox's length changes
// (bbolt only: on etcd other nodes change it too).
func (c *Config) openStorage(leaseTTL time.Duration, queueChanged func(int)) (*storage.DB, error) {
	if c.Storage.Backend != "etcd" {
		return storage.Open(c.Storage.Path, storage.Options{QueueChanged: queueChanged})
	}
	ecfg, err := c.EtcdConfig()
	if err != nil {
		return nil, err
	}
	ecfg.LeaseTTL = leaseTTL
	return storage.OpenEtcd(ecfg)
}

// migrate copies the bbolt database at from into the configured etcd.
func migrate(path, from string, stdout io.Writer) error {
	cfg, err := LoadConfig(path, os.Environ())
	if err != nil {
		return err
	}
	if cfg.Storage.Backend != "etcd" {
		return fmt.Errorf("storage.backend is %q: migrate copies into etcd, set storage.backend = \"etcd\" and its etcd_* keys", cfg.Storage.Backend)
	}
	ecfg, err := cfg.EtcdConfig()
	if err != nil {
		return err
	}
	st, err := storage.CopyToEtcd(from, ecfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied %d keys from %s to etcd %s (%d were there already)\n", st.Copied, from, ecfg.Prefix, st.Present)
	return nil
}
