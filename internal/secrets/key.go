package secrets

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// EnvMasterKey is the environment variable holding the master key.
const EnvMasterKey = "PERPETUO_MASTER_KEY"

// EnvMasterKeyOld is the environment variable holding the previous master
// key while a rotation is in progress.
const EnvMasterKeyOld = "PERPETUO_MASTER_KEY_OLD"

// KeyFileName is the name of the development master key file created in the
// data directory when EnvMasterKey is unset.
const KeyFileName = "master.key"

// KeySize is the size in bytes of a master key (AES-256).
const KeySize = 32

// idSize is the number of SHA-256 bytes forming a key id.
const idSize = 4

// ErrInvalidKey is wrapped by every error ParseKey returns.
var ErrInvalidKey = errors.New(EnvMasterKey + " must be 32 bytes, base64 or hex encoded")

// Key is a 32-byte AES-256 master key with a short id (first 8 hex chars of
// SHA-256 of the key bytes) recorded in every ciphertext so the right key is
// chosen on decrypt. The zero Key is not a valid key.
//
// Key.Encode returns the key material; a Key formatted with %v, %s, %+v or
// %#v, or logged through log/slog, shows only its id, so a stray format verb
// never prints the master key.
type Key struct {
	bytes [KeySize]byte
	id    [idSize]byte
}

func newKey(b []byte) Key {
	var k Key
	copy(k.bytes[:], b)
	sum := sha256.Sum256(k.bytes[:])
	copy(k.id[:], sum[:idSize])
	return k
}

// ParseKey decodes a master key given as base64 (standard or URL alphabet,
// padded or not) or as 64 hex characters; surrounding whitespace is ignored.
// It must decode to exactly 32 bytes. Errors wrap ErrInvalidKey and never
// include the input.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, fmt.Errorf("%w: value is empty", ErrInvalidKey)
	}
	// 64 hex characters are also valid base64 (of 48 bytes), so try hex
	// first; no 32-byte base64 encoding is 64 characters long.
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return newKey(b), nil
		}
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != KeySize {
			return Key{}, fmt.Errorf("%w: value decodes to %d bytes", ErrInvalidKey, len(b))
		}
		return newKey(b), nil
	}
	return Key{}, fmt.Errorf("%w: value is neither valid base64 nor 64 hex characters", ErrInvalidKey)
}

// GenerateKey returns a new random key from crypto/rand.
func GenerateKey() (Key, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return Key{}, fmt.Errorf("secrets: generating key: %w", err)
	}
	return newKey(b), nil
}

// ID returns the key's id: the first 8 hex characters of the SHA-256 of the
// key bytes. It is safe to log.
func (k Key) ID() string { return hex.EncodeToString(k.id[:]) }

// String names the key by its id only: never the material.
func (k Key) String() string { return "secrets.Key{id:" + k.ID() + "}" }

// Encode returns the key material, base64 (standard alphabet, padded): what
// PERPETUO_MASTER_KEY holds and ParseKey reads.
func (k Key) Encode() string { return base64.StdEncoding.EncodeToString(k.bytes[:]) }

// GoString implements fmt.GoStringer so that %#v shows the id, not the key.
func (k Key) GoString() string { return "secrets.Key{id:" + k.ID() + "}" }

// LogValue implements slog.LogValuer so that logging a Key shows its id only.
func (k Key) LogValue() slog.Value { return slog.GroupValue(slog.String("id", k.ID())) }

// IsZero reports whether k is the zero Key, which is not a usable key.
func (k Key) IsZero() bool { return k.bytes == [KeySize]byte{} }

// LoadOrCreate returns the key from envValue (the value of
// PERPETUO_MASTER_KEY) if it is non-empty (a value of only whitespace is an
// error, not a fallback); otherwise it reads
// <dataDir>/master.key, creating it (mode 0600, parent directory 0700) with
// a new key if missing. fromFile reports that the dev key file was created or
// used, so the server can warn that no master key was configured.
//
// Creation is atomic: concurrent callers on the same dataDir agree on one
// key, and a crash never leaves a partial file behind.
func LoadOrCreate(envValue, dataDir string) (k Key, fromFile bool, err error) {
	if envValue != "" {
		k, err = ParseKey(envValue)
		return k, false, err
	}
	if dataDir == "" {
		return Key{}, false, errors.New("secrets: " + EnvMasterKey + " is unset and there is no data directory for a dev key file")
	}
	path := filepath.Join(dataDir, KeyFileName)
	k, err = readKeyFile(path)
	if err == nil {
		return k, true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Key{}, false, err
	}
	k, err = GenerateKey()
	if err != nil {
		return Key{}, false, err
	}
	if err := createKeyFile(dataDir, path, k); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Someone else created it first: use theirs.
			k, err = readKeyFile(path)
			return k, err == nil, err
		}
		return Key{}, false, err
	}
	return k, true, nil
}

func readKeyFile(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("secrets: reading dev master key: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("secrets: dev master key file %s: %w", path, err)
	}
	return k, nil
}

// createKeyFile writes k to a temporary file and hard-links it to path, which
// fails with fs.ErrExist rather than replacing a key created concurrently.
func createKeyFile(dir, path string, k Key) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secrets: creating data directory: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+KeyFileName+".tmp*")
	if err != nil {
		return fmt.Errorf("secrets: creating dev master key: %w", err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }()
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return fmt.Errorf("secrets: creating dev master key: %w", err)
	}
	if _, err := f.WriteString(k.Encode() + "\n"); err != nil {
		_ = f.Close()
		return fmt.Errorf("secrets: writing dev master key: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("secrets: writing dev master key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("secrets: writing dev master key: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("secrets: creating dev master key: %w", err)
	}
	return nil
}
