package app

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/secrets"
)

// TestUndecryptableCredentialFailsClosed: a replica that cannot decrypt a
// workspace's own credential (a wrong master key) must not route that
// provider with the operator's key instead.
func TestUndecryptableCredentialFailsClosed(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	e := setup(t, nil)
	byok := newServer(t, byokUpstream(&seen, &mu))
	status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/credentials", e.key,
		`{"provider":"flaky","api_key":"`+byokSecret+`","base_url":"`+byok+`/v1","name":"own flaky"}`)
	require.Equal(t, 201, status, "%v", doc)

	wrong, err := secrets.GenerateKey()
	require.NoError(t, err)
	opts := Options{Pool: e.pool, Catalog: e.app.catalog, Operator: e.app.operator, Keyring: secrets.NewKeyring(wrong), Log: e.app.log}
	other, err := New(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(other.Handler)
	t.Cleanup(func() { srv.Close(); require.NoError(t, other.Close(context.Background())) })

	status, doc = call(t, srv.URL, "POST", "/v1/chat/completions", e.key,
		`{"model":"test/leaky","messages":[{"role":"user","content":"hi"}]}`)
	require.NotEqual(t, 200, status, "served with the operator's key instead: %v", doc)
	require.Equal(t, 404, status, "%v", doc)
	mu.Lock()
	require.Empty(t, seen, "nothing reached the workspace's upstream with an unreadable key")
	mu.Unlock()
}
