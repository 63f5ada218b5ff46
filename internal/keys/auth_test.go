package keys

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
)

type fakeLookup struct {
	keys  map[string]Key // plaintext → key
	calls int
}

func (f *fakeLookup) KeyByHash(_ context.Context, hash []byte) (Key, error) {
	f.calls++
	for pt, k := range f.keys {
		if string(Hash(pt)) == string(hash) {
			return k, nil
		}
	}
	return Key{}, ErrNotFound
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	past := now.Add(-time.Minute)
	good, disabled, expired := Generate(), Generate(), Generate()
	lookup := &fakeLookup{keys: map[string]Key{
		good:     {ID: "key_good"},
		disabled: {ID: "key_off", Disabled: true},
		expired:  {ID: "key_old", ExpiresAt: &past},
	}}
	a := NewAuthenticator(lookup, func() time.Time { return now }, nil)
	cases := []struct {
		name, token, wantMsg string
	}{
		{"missing", "", "Missing API key"},
		{"malformed", "sk-openai-style", "start with 'pk_'"},
		{"unknown", Generate(), "Unknown API key"},
		{"disabled", disabled, "disabled"},
		{"expired", expired, "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Authenticate(context.Background(), tc.token)
			var e *apierr.Error
			require.True(t, errors.As(err, &e))
			require.Equal(t, 401, e.Status)
			require.Equal(t, apierr.Authentication, e.Type)
			require.Contains(t, e.Message, tc.wantMsg)
		})
	}
	k, err := a.Authenticate(context.Background(), good)
	require.NoError(t, err)
	require.Equal(t, "key_good", k.ID)
	calls := lookup.calls
	_, err = a.Authenticate(context.Background(), good)
	require.NoError(t, err)
	require.Equal(t, calls, lookup.calls, "a cached key must not be looked up again")
	a.InvalidateAll()
	_, err = a.Authenticate(context.Background(), good)
	require.NoError(t, err)
	require.Equal(t, calls+1, lookup.calls)
}

func TestGenerateAndLabel(t *testing.T) {
	t.Parallel()
	k := Generate()
	require.True(t, WellFormed(k))
	require.Len(t, k, 46)
	require.NotEqual(t, k, Generate())
	l := Label(k)
	require.Equal(t, k[:6], l[:6])
	require.NotContains(t, l, k[6:len(k)-3], "the label must not reveal the secret")
	require.Len(t, Hash(k), 32)
}

// TestUnknownKeysAreRememberedBriefly: retrying an unknown key costs one
// lookup a minute, not one per request.
func TestUnknownKeysAreRememberedBriefly(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lookup := &fakeLookup{keys: map[string]Key{}}
	a := NewAuthenticator(lookup, func() time.Time { return now }, nil)
	unknown := Generate()
	for range 5 {
		_, err := a.Authenticate(context.Background(), unknown)
		require.ErrorContains(t, err, "Unknown API key")
		require.NotContains(t, err.Error(), "revoked")
	}
	require.Equal(t, 1, lookup.calls)
	now = now.Add(2 * time.Minute)
	_, err := a.Authenticate(context.Background(), unknown)
	require.Error(t, err)
	require.Equal(t, 2, lookup.calls, "forgotten after a while")
}
