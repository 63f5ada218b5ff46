package secrets

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// keyBytes returns n bytes chosen so that their base64 encoding uses the
// characters that differ between the standard and URL alphabets.
func keyBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0xf8 + i%8)
	}
	return b
}

func TestParseKeyAccepts(t *testing.T) {
	t.Parallel()
	raw := keyBytes(KeySize)
	std := base64.StdEncoding.EncodeToString(raw)
	url := base64.URLEncoding.EncodeToString(raw)
	require.Contains(t, std, "/")
	require.Contains(t, url, "_")
	sum := sha256.Sum256(raw)

	tests := []struct {
		name, in string
	}{
		{"base64 std padded", std},
		{"base64 std unpadded", strings.TrimRight(std, "=")},
		{"base64 url padded", url},
		{"base64 url unpadded", strings.TrimRight(url, "=")},
		{"hex lower", hex.EncodeToString(raw)},
		{"hex upper", strings.ToUpper(hex.EncodeToString(raw))},
		{"surrounding whitespace", "  " + std + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := ParseKey(tt.in)
			require.NoError(t, err)
			require.Equal(t, std, k.Encode())
			require.Equal(t, hex.EncodeToString(sum[:])[:8], k.ID())
			require.False(t, k.IsZero())
		})
	}
}

func TestParseKeyRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"whitespace", " \n\t"},
		{"16 bytes base64", base64.StdEncoding.EncodeToString(keyBytes(16))},
		{"33 bytes base64", base64.StdEncoding.EncodeToString(keyBytes(33))},
		{"48 bytes base64", base64.StdEncoding.EncodeToString(keyBytes(48))},
		{"31 bytes hex", hex.EncodeToString(keyBytes(31))},
		{"33 bytes hex", hex.EncodeToString(keyBytes(33))},
		{"64 chars not hex", strings.Repeat("zq!", 21) + "z"},
		{"garbage", "correct horse battery staple"},
		{"mixed alphabets", strings.Repeat("a+_b", 11)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseKey(tt.in)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalidKey)
			require.True(t, strings.HasPrefix(err.Error(),
				"PERPETUO_MASTER_KEY must be 32 bytes, base64 or hex encoded: "), err.Error())
			if s := strings.TrimSpace(tt.in); s != "" {
				require.NotContains(t, err.Error(), s)
				require.NotContains(t, err.Error(), s[:8])
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()
	k1, err := GenerateKey()
	require.NoError(t, err)
	k2, err := GenerateKey()
	require.NoError(t, err)
	require.NotEqual(t, k1.Encode(), k2.Encode())
	require.Len(t, k1.ID(), 8)

	back, err := ParseKey(k1.Encode())
	require.NoError(t, err)
	require.Equal(t, k1, back)
}

func TestKeyFormattingHidesMaterial(t *testing.T) {
	t.Parallel()
	k, err := GenerateKey()
	require.NoError(t, err)
	secret := k.Encode()

	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "key", k)
	for name, s := range map[string]string{
		"%#v":  fmt.Sprintf("%#v", k),
		"%v":   fmt.Sprintf("%v %s %+v", k, k, k),
		"slog": buf.String(),
		"ring": fmt.Sprintf("%+v %#v", *NewKeyring(k), NewKeyring(k)),
	} {
		require.NotContains(t, s, secret, name)
		require.NotContains(t, s, secret[:8], name)
	}
	require.Contains(t, buf.String(), k.ID())
}

func TestLoadOrCreate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, KeyFileName)

	k1, fromFile, err := LoadOrCreate("", dir)
	require.NoError(t, err)
	require.True(t, fromFile)
	require.False(t, k1.IsZero())
	content, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, k1.Encode()+"\n", string(content))
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		di, err := os.Stat(dir)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	}

	k2, fromFile, err := LoadOrCreate("", dir)
	require.NoError(t, err)
	require.True(t, fromFile)
	require.Equal(t, k1, k2)
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, content, again, "file must not be rewritten")

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left behind")

	env, err := GenerateKey()
	require.NoError(t, err)
	k3, fromFile, err := LoadOrCreate(env.Encode(), dir)
	require.NoError(t, err)
	require.False(t, fromFile)
	require.Equal(t, env, k3)
}

func TestLoadOrCreateEnvDoesNotTouchDisk(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	env, err := GenerateKey()
	require.NoError(t, err)
	k, fromFile, err := LoadOrCreate(hex.EncodeToString(env.bytes[:]), dir)
	require.NoError(t, err)
	require.False(t, fromFile)
	require.Equal(t, env, k)
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestLoadOrCreateErrors(t *testing.T) {
	t.Parallel()

	t.Run("bad env value", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		_, _, err := LoadOrCreate("hunter2hunter2", dir)
		require.ErrorIs(t, err, ErrInvalidKey)
		require.NotContains(t, err.Error(), "hunter2")
		_, err = os.Stat(filepath.Join(dir, KeyFileName))
		require.ErrorIs(t, err, os.ErrNotExist, "a bad env value must not fall back to a file")
	})
	t.Run("whitespace env value", func(t *testing.T) {
		t.Parallel()
		_, _, err := LoadOrCreate("  ", t.TempDir())
		require.ErrorIs(t, err, ErrInvalidKey)
	})
	t.Run("corrupt file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, KeyFileName)
		require.NoError(t, os.WriteFile(path, []byte("c29tZSBzZWNyZXQgc3R1ZmY="), 0o600))
		_, _, err := LoadOrCreate("", dir)
		require.ErrorIs(t, err, ErrInvalidKey)
		require.Contains(t, err.Error(), path)
		require.NotContains(t, err.Error(), "c29tZSBzZWNyZXQgc3R1ZmY")
	})
	t.Run("no data dir", func(t *testing.T) {
		t.Parallel()
		_, _, err := LoadOrCreate("", "")
		require.Error(t, err)
	})
}

func TestLoadOrCreateConcurrent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	const n = 16
	keys := make([]Key, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], _, errs[i] = LoadOrCreate("", dir) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, keys[0], keys[i])
	}
	onDisk, _, err := LoadOrCreate("", dir)
	require.NoError(t, err)
	require.Equal(t, keys[0], onDisk)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

func TestErrorsAreDistinct(t *testing.T) {
	t.Parallel()
	require.False(t, errors.Is(ErrCorrupt, ErrUnknownKey))
	require.Contains(t, ErrUnknownKey.Error(), EnvMasterKeyOld)
}
