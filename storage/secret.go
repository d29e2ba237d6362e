package storage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"activated/flow"
	"activated/internal/private"
)

// secretLen is the size of the secret kept in <database>.secret.
const secretLen = 32

// keys are derived from the secret: codes are stored as HMAC(secret,
// normalized code); outbox values are sealed with AES-256-GCM under
// HMAC(secret, "outbox").
type keys struct {
	secret []byte
	outbox cipher.AEAD
}

// loadKeys reads the secret beside the database at dbPath, creating it when
// neither it nor the database exists yet.
func loadKeys(dbPath string) (*keys, error) {
	path := dbPath + ".secret"
	secret, err := readSecret(path)
	if errors.Is(err, fs.ErrNotExist) {
		if st, serr := os.Stat(dbPath); serr == nil && st.Size() > 0 {
			return nil, fmt.Errorf("secret %s is missing: the codes and outbox of %s cannot be read without it", path, dbPath)
		}
		secret, err = createSecret(path)
	}
	if err != nil {
		return nil, err
	}
	return newKeys(secret)
}

// newKeys derives the keys from a secret of secretLen bytes.
func newKeys(secret []byte) (*keys, error) {
	block, err := aes.NewCipher(mac(secret, []byte("outbox")))
	if err != nil {
		return nil, fmt.Errorf("outbox key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("outbox key: %w", err)
	}
	return &keys{secret: secret, outbox: aead}, nil
}

func readSecret(path string) ([]byte, error) {
	secret, err := private.ReadFile(path, secretLen+1) // one more: a longer file gets the length message
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if len(secret) != secretLen {
		return nil, fmt.Errorf("secret %s: want exactly %d bytes", path, secretLen)
	}
	return secret, nil
}

// createSecret writes a fresh secret through a temporary file linked into
// place, so a concurrent Open reads either nothing or the whole secret.
func createSecret(path string) ([]byte, error) {
	secret := make([]byte, secretLen)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("create secret: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(secret)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race
			return readSecret(path)
		}
		return nil, fmt.Errorf("create secret: %w", err)
	}
	return secret, nil
}

func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// codeKey is the key of a code record: HMAC of the normalized code.
func (k *keys) codeKey(code string) ([]byte, bool) {
	n, ok := flow.NormalizeCode(code)
	if !ok {
		return nil, false
	}
	return mac(k.secret, []byte(n)), true
}

// seal encrypts plain, bound to the bbolt key it is stored under:
// nonce || ciphertext.
func (k *keys) seal(key, plain []byte) ([]byte, error) {
	ns := k.outbox.NonceSize()
	out := make([]byte, ns, ns+len(plain)+k.outbox.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return k.outbox.Seal(out, out[:ns], plain, key), nil
}

// open decrypts what seal made; the result is a fresh slice.
func (k *keys) open(key, sealed []byte) ([]byte, error) {
	ns := k.outbox.NonceSize()
	if len(sealed) < ns {
		return nil, errors.New("unseal: value too short")
	}
	plain, err := k.outbox.Open(nil, sealed[:ns], sealed[ns:], key)
	if err != nil {
		return nil, fmt.Errorf("unseal: %w", err)
	}
	return plain, nil
}
