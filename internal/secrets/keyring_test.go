package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func mustKey(t *testing.T) Key {
	t.Helper()
	k, err := GenerateKey()
	require.NoError(t, err)
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	ring := NewKeyring(mustKey(t))
	tests := []struct {
		name           string
		plaintext, aad []byte
	}{
		{"api key", []byte("sk-proj-abcdefghijklmnop"), []byte("cred_123")},
		{"empty plaintext", []byte{}, []byte("cred_123")},
		{"nil aad", []byte("sk-ant-xyz"), nil},
		{"large", bytes.Repeat([]byte{0xa5}, 64<<10), []byte("cred_big")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ct, err := ring.Seal(tt.plaintext, tt.aad)
			require.NoError(t, err)
			require.Len(t, ct, len(tt.plaintext)+Overhead)
			if len(tt.plaintext) > 0 {
				require.False(t, bytes.Contains(ct, tt.plaintext))
			}
			pt, err := ring.Open(ct, tt.aad)
			require.NoError(t, err)
			require.Equal(t, len(tt.plaintext), len(pt))
			require.True(t, bytes.Equal(tt.plaintext, pt))
		})
	}
}

func TestSealFormat(t *testing.T) {
	t.Parallel()
	k := mustKey(t)
	ring := NewKeyring(k)
	require.Equal(t, k.ID(), ring.CurrentID())
	ct, err := ring.Seal([]byte("secret"), []byte("cred_1"))
	require.NoError(t, err)
	require.Equal(t, Version, ct[0])
	sum := sha256.Sum256(k.bytes[:])
	require.Equal(t, sum[:4], ct[1:5])
	id, err := KeyIDOf(ct)
	require.NoError(t, err)
	require.Equal(t, k.ID(), id)
}

func TestSealUsesFreshNonces(t *testing.T) {
	t.Parallel()
	ring := NewKeyring(mustKey(t))
	seen := map[string]bool{}
	nonces := map[string]bool{}
	for range 100 {
		ct, err := ring.Seal([]byte("same plaintext"), []byte("cred_1"))
		require.NoError(t, err)
		require.False(t, seen[string(ct)], "two seals produced the same ciphertext")
		seen[string(ct)] = true
		nonce := string(ct[headerSize:prefixSize])
		require.False(t, nonces[nonce], "nonce reused")
		nonces[nonce] = true
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	ring := NewKeyring(mustKey(t))
	aad := []byte("cred_1")
	ct, err := ring.Seal([]byte("sk-live-0123456789"), aad)
	require.NoError(t, err)
	with := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(ct)) }

	tests := []struct {
		name       string
		ciphertext []byte
		aad        []byte
		want       error
	}{
		{"wrong aad", ct, []byte("cred_2"), ErrCorrupt},
		{"missing aad", ct, nil, ErrCorrupt},
		{"aad prefix", ct, aad[:len(aad)-1], ErrCorrupt},
		{"nil", nil, aad, ErrCorrupt},
		{"too short", ct[:Overhead-1], aad, ErrCorrupt},
		{"truncated tag", ct[:len(ct)-1], aad, ErrCorrupt},
		{"extra byte", append(bytes.Clone(ct), 0), aad, ErrCorrupt},
		{"version 0", with(func(b []byte) []byte { b[0] = 0; return b }), aad, ErrCorrupt},
		{"version 2", with(func(b []byte) []byte { b[0] = 2; return b }), aad, ErrCorrupt},
		{"key id", with(func(b []byte) []byte { b[2] ^= 1; return b }), aad, ErrUnknownKey},
		{"nonce", with(func(b []byte) []byte { b[headerSize] ^= 1; return b }), aad, ErrCorrupt},
		{"body", with(func(b []byte) []byte { b[prefixSize] ^= 1; return b }), aad, ErrCorrupt},
		{"tag", with(func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }), aad, ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pt, err := ring.Open(tt.ciphertext, tt.aad)
			require.ErrorIs(t, err, tt.want)
			require.Nil(t, pt)
		})
	}
}

func TestOpenRejectsEveryTamperedByte(t *testing.T) {
	t.Parallel()
	ring := NewKeyring(mustKey(t))
	ct, err := ring.Seal([]byte("sk-live-0123456789"), []byte("cred_1"))
	require.NoError(t, err)
	for i := range ct {
		for _, bit := range []byte{0x01, 0x80} {
			b := bytes.Clone(ct)
			b[i] ^= bit
			_, err := ring.Open(b, []byte("cred_1"))
			require.Error(t, err, "byte %d bit %#x", i, bit)
			if i >= 1 && i < headerSize {
				require.ErrorIs(t, err, ErrUnknownKey)
			} else {
				require.ErrorIs(t, err, ErrCorrupt)
			}
		}
	}
}

func TestOpenUnknownKey(t *testing.T) {
	t.Parallel()
	k1, k2 := mustKey(t), mustKey(t)
	ct, err := NewKeyring(k1).Seal([]byte("secret"), []byte("cred_1"))
	require.NoError(t, err)

	_, err = NewKeyring(k2).Open(ct, []byte("cred_1"))
	require.ErrorIs(t, err, ErrUnknownKey)
	require.NotErrorIs(t, err, ErrCorrupt)
	require.Contains(t, err.Error(), "PERPETUO_MASTER_KEY_OLD")
	require.Contains(t, err.Error(), k1.ID())
	require.NotContains(t, err.Error(), k1.Encode())
}

func TestRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := mustKey(t), mustKey(t)
	aad := []byte("cred_42")
	plaintext := []byte("sk-ant-api03-secret")

	old := NewKeyring(k1)
	ct1, err := old.Seal(plaintext, aad)
	require.NoError(t, err)
	require.False(t, old.NeedsRotation(ct1))

	// During rotation: new current key, old key still accepted.
	during := NewKeyring(k2, k1)
	require.True(t, during.NeedsRotation(ct1))
	pt, err := during.Open(ct1, aad)
	require.NoError(t, err)
	require.Equal(t, plaintext, pt)

	// What `perpetuo secrets rotate` does per row.
	ct2, err := during.Seal(pt, aad)
	require.NoError(t, err)
	require.False(t, during.NeedsRotation(ct2))
	id, err := KeyIDOf(ct2)
	require.NoError(t, err)
	require.Equal(t, k2.ID(), id)

	// After rotation: the old key is gone.
	after := NewKeyring(k2)
	require.False(t, after.NeedsRotation(ct2))
	pt, err = after.Open(ct2, aad)
	require.NoError(t, err)
	require.Equal(t, plaintext, pt)
	_, err = after.Open(ct1, aad)
	require.ErrorIs(t, err, ErrUnknownKey)

	// The re-sealed ciphertext is still bound to its row.
	_, err = after.Open(ct2, []byte("cred_43"))
	require.ErrorIs(t, err, ErrCorrupt)
}

func TestNeedsRotationMalformed(t *testing.T) {
	t.Parallel()
	ring := NewKeyring(mustKey(t))
	for _, ct := range [][]byte{nil, {Version}, bytes.Repeat([]byte{2}, Overhead)} {
		require.True(t, ring.NeedsRotation(ct))
	}
}

func TestKeyIDOfRejects(t *testing.T) {
	t.Parallel()
	for name, ct := range map[string][]byte{
		"nil":       nil,
		"short":     {Version, 1, 2, 3, 4},
		"version 9": append([]byte{9}, make([]byte, Overhead)...),
	} {
		_, err := KeyIDOf(ct)
		require.ErrorIs(t, err, ErrCorrupt, name)
	}
}

func TestKeyringZeroAndDuplicateKeys(t *testing.T) {
	t.Parallel()
	k1, k2 := mustKey(t), mustKey(t)

	_, err := NewKeyring(Key{}, k1).Seal([]byte("x"), nil)
	require.Error(t, err)
	require.Empty(t, NewKeyring(Key{}).CurrentID())

	ct, err := NewKeyring(k1).Seal([]byte("x"), nil)
	require.NoError(t, err)
	zeroCur := NewKeyring(Key{}, k1)
	require.True(t, zeroCur.NeedsRotation(ct))
	pt, err := zeroCur.Open(ct, nil)
	require.NoError(t, err, "old keys still open with no current key")
	require.Equal(t, []byte("x"), pt)

	ring := NewKeyring(k2, k1, k2, Key{}, k1)
	require.Len(t, ring.entries, 2)
	require.Equal(t, k2.ID(), ring.CurrentID())
	pt, err = ring.Open(ct, nil)
	require.NoError(t, err)
	require.Equal(t, []byte("x"), pt)
}

// TestKeyIDCollision finds two keys whose 32-bit ids collide and checks that
// a ring holding both still opens what either sealed.
func TestKeyIDCollision(t *testing.T) {
	t.Parallel()
	seen := map[[idSize]byte]Key{}
	var a, b Key
	for i := uint64(0); ; i++ {
		var raw [KeySize]byte
		binary.LittleEndian.PutUint64(raw[:], i)
		raw[31] = 0x5a
		k := newKey(raw[:])
		if prev, ok := seen[k.id]; ok {
			a, b = prev, k
			break
		}
		seen[k.id] = k
	}
	require.Equal(t, a.ID(), b.ID())
	require.NotEqual(t, a.Encode(), b.Encode())

	ctA, err := NewKeyring(a).Seal([]byte("from a"), []byte("row"))
	require.NoError(t, err)
	ctB, err := NewKeyring(b).Seal([]byte("from b"), []byte("row"))
	require.NoError(t, err)
	for _, ring := range []*Keyring{NewKeyring(a, b), NewKeyring(b, a)} {
		pt, err := ring.Open(ctA, []byte("row"))
		require.NoError(t, err)
		require.Equal(t, []byte("from a"), pt)
		pt, err = ring.Open(ctB, []byte("row"))
		require.NoError(t, err)
		require.Equal(t, []byte("from b"), pt)
		_, err = ring.Open(ctB, []byte("other row"))
		require.ErrorIs(t, err, ErrCorrupt)
	}
}

func TestKeyringConcurrentUse(t *testing.T) {
	t.Parallel()
	k1, k2 := mustKey(t), mustKey(t)
	ring := NewKeyring(k2, k1)
	old, err := NewKeyring(k1).Seal([]byte("old"), []byte("row-old"))
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Go(func() {
			aad := fmt.Appendf(nil, "row-%d", i)
			ct, err := ring.Seal(aad, aad)
			if err == nil {
				var pt []byte
				if pt, err = ring.Open(ct, aad); err == nil && !bytes.Equal(pt, aad) {
					err = fmt.Errorf("round trip %d mismatch", i)
				}
			}
			if err == nil {
				_, err = ring.Open(old, []byte("row-old"))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}
