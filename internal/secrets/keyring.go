package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// Version is the format version byte that starts every ciphertext.
const Version byte = 1

const (
	headerSize = 1 + idSize             // version || key id
	nonceSize  = 12                     // GCM standard nonce
	tagSize    = 16                     // GCM tag
	prefixSize = headerSize + nonceSize // everything before the GCM output
	// Overhead is the number of bytes Seal adds to the plaintext.
	Overhead = prefixSize + tagSize
)

// ErrUnknownKey is returned by Open for a ciphertext sealed under a master
// key that is not in the keyring.
var ErrUnknownKey = errors.New("secrets: credential was sealed under a master key that is not configured; " +
	"if a master key rotation is in progress, set the previous key in " + EnvMasterKeyOld)

// ErrCorrupt is returned by Open for a ciphertext that is too short, has an
// unknown version, or fails authentication (tampered, or opened with another
// aad than it was sealed with).
var ErrCorrupt = errors.New("secrets: ciphertext is corrupt or does not belong to this record")

// Keyring holds the current key (used to seal) and older keys (still
// accepted to open) during rotation. It is immutable and safe for concurrent
// use. It does not keep the key material other than inside the AES ciphers,
// so formatting a Keyring does not reveal keys.
type Keyring struct {
	current *ringEntry  // nil when built with the zero Key
	entries []ringEntry // current first, then old keys; no duplicates
}

type ringEntry struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// NewKeyring returns a keyring that seals under current and opens ciphertexts
// sealed under current or any of old. Zero keys and duplicates are ignored;
// a ring whose current key is the zero Key fails to Seal.
func NewKeyring(current Key, old ...Key) *Keyring {
	r := &Keyring{}
	var seen []Key
	for _, k := range append([]Key{current}, old...) {
		if k.IsZero() {
			continue
		}
		dup := false
		for _, s := range seen {
			if s.bytes == k.bytes {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		seen = append(seen, k)
		block, err := aes.NewCipher(k.bytes[:])
		if err != nil {
			panic("secrets: " + err.Error()) // unreachable: the key is 32 bytes
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			panic("secrets: " + err.Error()) // unreachable: standard nonce and tag sizes
		}
		r.entries = append(r.entries, ringEntry{id: k.id, aead: aead})
	}
	if !current.IsZero() {
		r.current = &r.entries[0]
	}
	return r
}

// CurrentID returns the id of the key the ring seals under, or "" for a ring
// built without a usable current key.
func (r *Keyring) CurrentID() string {
	if r.current == nil {
		return ""
	}
	return hex.EncodeToString(r.current.id[:])
}

// Seal encrypts plaintext under the current key. The output is
//
//	version (1) || key id (4 raw bytes) || nonce (12 random bytes) || GCM ciphertext and tag
//
// and is Overhead bytes longer than plaintext. aad binds the ciphertext to
// its row (callers pass e.g. the credential id) so that a ciphertext copied
// to another row fails to open; it is authenticated but not stored, and Open
// must be given the same value. The version and key id are authenticated
// too.
func (r *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	cur := r.current
	if cur == nil {
		return nil, errors.New("secrets: keyring has no current master key")
	}
	out := make([]byte, prefixSize, prefixSize+len(plaintext)+tagSize)
	out[0] = Version
	copy(out[1:headerSize], cur.id[:])
	nonce := out[headerSize:prefixSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secrets: generating nonce: %w", err)
	}
	return cur.aead.Seal(out, nonce, plaintext, additionalData(out[:headerSize], aad)), nil
}

// Open decrypts a ciphertext produced by Seal with the same aad, choosing the
// key by the id it records. It returns an error wrapping ErrUnknownKey when
// that key is not in the ring, and ErrCorrupt when the ciphertext is too
// short, has an unknown version or fails authentication.
func (r *Keyring) Open(ciphertext, aad []byte) ([]byte, error) {
	id, err := parseHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	ad := additionalData(ciphertext[:headerSize], aad)
	nonce := ciphertext[headerSize:prefixSize]
	found := false
	for _, e := range r.entries {
		if e.id != id {
			continue
		}
		found = true // more than one entry only on a 32-bit id collision
		if pt, err := e.aead.Open(nil, nonce, ciphertext[prefixSize:], ad); err == nil {
			return pt, nil
		}
	}
	if !found {
		return nil, fmt.Errorf("%w (key id %x)", ErrUnknownKey, id[:])
	}
	return nil, fmt.Errorf("%w: authentication failed", ErrCorrupt)
}

// NeedsRotation reports whether ciphertext was not sealed under the ring's
// current key, i.e. whether a rotation must Open and Seal it again. It also
// reports true for a malformed ciphertext, so that a rotation pass surfaces
// the problem (Open will return ErrCorrupt) instead of skipping the record.
func (r *Keyring) NeedsRotation(ciphertext []byte) bool {
	id, err := parseHeader(ciphertext)
	return err != nil || r.current == nil || id != r.current.id
}

// KeyIDOf returns the key id a ciphertext was sealed with, in the form of
// Key.ID. It returns an error wrapping ErrCorrupt if ciphertext is too short
// or has an unknown version. It does not authenticate the ciphertext.
func KeyIDOf(ciphertext []byte) (string, error) {
	id, err := parseHeader(ciphertext)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(id[:]), nil
}

func parseHeader(ciphertext []byte) ([idSize]byte, error) {
	var id [idSize]byte
	if len(ciphertext) < Overhead {
		return id, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, len(ciphertext))
	}
	if ciphertext[0] != Version {
		return id, fmt.Errorf("%w: unknown version %d", ErrCorrupt, ciphertext[0])
	}
	copy(id[:], ciphertext[1:headerSize])
	return id, nil
}

// additionalData is the GCM additional data: the fixed-size header, then the
// caller's aad. The header's fixed size keeps the concatenation unambiguous.
func additionalData(header, aad []byte) []byte {
	ad := make([]byte, 0, len(header)+len(aad))
	return append(append(ad, header...), aad...)
}
