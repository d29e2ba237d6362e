// Package hostkeys owns the SSH server's host key: it loads the ed25519 key
// from its file, or creates it (file 0600 in a 0700 directory) on first
// start, refuses a key whose file or directory other users can reach, and
// prints what operators publish: the SHA256 fingerprint and SSHFP records.
package hostkeys

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"activated/internal/private"
)

// maxKeySize bounds what LoadOrCreate reads: an OpenSSH ed25519 key is
// about 400 bytes, an RSA-8192 key under 7 KiB.
const maxKeySize = 64 << 10

// LoadOrCreate returns the host key stored at path in OpenSSH format. When
// the file does not exist it creates the directory (0700) and a new ed25519
// key (0600). It refuses a key file that the group or others can access, and
// a directory that the group or others can write to.
func LoadOrCreate(path string) (ssh.Signer, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("host key directory %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("host key directory %s: %w", dir, err)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("host key directory %s has mode %04o: the group or others can write to it and could replace the key; run: chmod go-w %s",
			dir, st.Mode().Perm(), dir)
	}

	signer, err := load(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := create(path); err != nil {
			return nil, err
		}
		signer, err = load(path)
	}
	return signer, err
}

// load reads and parses an existing key file after checking its mode.
func load(path string) (ssh.Signer, error) {
	data, err := private.ReadFile(path, maxKeySize)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	return signer, nil
}

// create writes a new ed25519 key to path without ever exposing a partial
// file: the key goes to a temporary file (0600) that is then linked to its
// name, which fails if another process created the key meanwhile.
func create(path string) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("host key: generate: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "activated host key")
	if err != nil {
		return fmt.Errorf("host key: encode: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".hostkey-*") // mode 0600
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pem.EncodeToMemory(block)); err != nil {
		tmp.Close()
		return fmt.Errorf("host key: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("host key: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("host key: close %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("host key: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Fingerprint returns the key's fingerprint as ssh-keygen -l prints it:
// "SHA256:" followed by unpadded base64.
func Fingerprint(pub ssh.PublicKey) string {
	return ssh.FingerprintSHA256(pub)
}

// sshfpAlgorithms maps key types to their SSHFP algorithm numbers
// (RFC 4255, 6594, 7479).
var sshfpAlgorithms = map[string]int{
	ssh.KeyAlgoRSA:      1,
	ssh.KeyAlgoDSA:      2,
	ssh.KeyAlgoECDSA256: 3,
	ssh.KeyAlgoECDSA384: 3,
	ssh.KeyAlgoECDSA521: 3,
	ssh.KeyAlgoED25519:  4,
}

// SSHFP returns the DNS SSHFP records of pub for host, SHA-1 then SHA-256,
// in the zone-file form ssh-keygen -r prints:
//
//	host IN SSHFP 4 1 <sha1 hex>
//	host IN SSHFP 4 2 <sha256 hex>
//
// It returns nil for a key type SSHFP has no number for.
func SSHFP(host string, pub ssh.PublicKey) []string {
	alg, ok := sshfpAlgorithms[pub.Type()]
	if !ok {
		return nil
	}
	blob := pub.Marshal()
	s1 := sha1.Sum(blob)
	s256 := sha256.Sum256(blob)
	return []string{
		fmt.Sprintf("%s IN SSHFP %d 1 %s", host, alg, hex.EncodeToString(s1[:])),
		fmt.Sprintf("%s IN SSHFP %d 2 %s", host, alg, hex.EncodeToString(s256[:])),
	}
}
