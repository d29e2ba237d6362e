package main

// Online backup. The running service holds the database's file lock
// (bbolt's flock: even a read-only open waits for it), so `activated
// backup` asks the service for a copy over a unix socket beside the
// database (storage.path + ".backup.sock", mode 0600, in the service's
// state directory): the service writes one consistent bbolt copy
// (Tx.WriteTo, from a read transaction, while users go on) and closes.
// When no service answers on the socket, backup opens the database itself.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"activated/internal/private"
	"activated/storage"
)

func backupSocket(cfg *Config) string { return cfg.Storage.Path + ".backup.sock" }

// listenBackup opens the backup socket; a socket file left by a service
// that died is replaced (this process holds the database lock, so no other
// service is listening on it).
func listenBackup(cfg *Config) (net.Listener, error) {
	path := backupSocket(cfg)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("backup socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("backup socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("backup socket: %w", err)
	}
	return ln, nil
}

// serveBackups answers each connection with a copy of the database.
func serveBackups(ln net.Listener, db *storage.DB, log *slog.Logger) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed at shutdown
		}
		start := time.Now()
		n, err := db.WriteTo(c)
		c.Close()
		if err != nil {
			log.Error("backup failed", "err", err)
			continue
		}
		log.Info("backup written", "bytes", n, "duration", time.Since(start).Round(time.Millisecond))
	}
}

// backup writes the database to out and its code secret to out+".secret".
func backup(ctx context.Context, path, out string, stdout io.Writer) error {
	cfg, err := LoadConfig(path, os.Environ())
	if err != nil {
		return err
	}
	if out == "" {
		return errors.New("-o FILE is required: where to write the copy")
	}
	if err := refuseInUse(out); err != nil {
		return err
	}
	secret, err := private.ReadFile(cfg.Storage.Path+".secret", 1024)
	if err != nil {
		return fmt.Errorf("code secret: %w", err)
	}
	tmp := out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	how, err := copyDatabase(ctx, cfg, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	dossiers, err := storage.VerifyCopy(tmp)
	if err != nil {
		return fmt.Errorf("the copy is not sound, nothing written: %w", err)
	}
	if err := writePrivate(out+".secret", secret); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backup: %s (%d dossiers, %s) and its code secret %s\n", out, dossiers, how, out+".secret")
	return nil
}

// refuseInUse refuses an out that is a database some process has open (the
// service's own storage.path, another instance's): renaming the copy over
// it would leave that process writing to a deleted file, and its secret
// would be replaced. bbolt holds an flock on its file while open.
func refuseInUse(out string) error {
	f, err := os.Open(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("-o %s is a database a running process has open (storage.path of a running service?): write the copy elsewhere", out)
	} else if err != nil {
		return fmt.Errorf("-o %s: %w", out, err)
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// copyDatabase asks the running service for the copy, or, when none
// listens, makes it from the database file.
func copyDatabase(ctx context.Context, cfg *Config, w io.Writer) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", backupSocket(cfg))
	if err == nil {
		defer c.Close()
		if _, err := io.Copy(w, c); err != nil {
			return "", fmt.Errorf("copy from the running service: %w", err)
		}
		return "copied by the running service", nil
	}
	if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ECONNREFUSED) {
		return "", fmt.Errorf("backup socket %s: %w", backupSocket(cfg), err)
	}
	db, err := storage.Open(cfg.Storage.Path, storage.Options{})
	if err != nil {
		return "", fmt.Errorf("no service answers on %s, and: %w", backupSocket(cfg), err)
	}
	defer db.Close()
	if _, err := db.WriteTo(w); err != nil {
		return "", err
	}
	return "service not running: copied from the file", nil
}

// writePrivate writes data to path, mode 0600, through a temporary file.
func writePrivate(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
