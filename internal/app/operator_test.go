package app

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/store"
)

// TestOnlyTheOperatorLendsItsProviderKeys: a workspace owner can neither
// create a workspace (which used to inherit the operator's provider keys)
// nor switch use_operator_credentials on; the operator does both, for any
// workspace; new workspaces start without the operator's keys.
func TestOnlyTheOperatorLendsItsProviderKeys(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	status, doc := call(t, e.srv.URL, "GET", "/v1/key", e.key, "")
	require.Equal(t, 200, status)
	require.Equal(t, true, data(doc)["operator"], "the bootstrap key is the operator's")

	status, doc = call(t, e.srv.URL, "POST", "/v1/workspaces", e.key, `{"name":"team","owner":{"name":"lead"}}`)
	require.Equal(t, http.StatusCreated, status, "%v", doc)
	ws := data(doc)["workspace"].(map[string]any)
	require.Equal(t, false, ws["use_operator_credentials"])
	owner := data(doc)["key"].(map[string]any)["key"].(string)
	wsPath := "/v1/workspaces/" + ws["id"].(string)

	status, doc = call(t, e.srv.URL, "GET", "/v1/key", owner, "")
	require.Equal(t, 200, status)
	require.Equal(t, false, data(doc)["operator"])
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", owner, chatBody)
	require.Equal(t, 404, status, "no provider keys of its own, none lent: %v", doc)

	for _, tc := range []struct{ name, method, path, body string }{
		{"create a workspace", "POST", "/v1/workspaces", `{"name":"escape","use_operator_credentials":true,"owner":{"name":"x"}}`},
		{"switch the operator's keys on", "PATCH", wsPath, `{"use_operator_credentials":true}`},
	} {
		status, doc := call(t, e.srv.URL, tc.method, tc.path, owner, tc.body)
		require.Equal(t, 403, status, "%s: %v", tc.name, doc)
		er := requireEnvelope(t, doc, 403, "permission_denied")
		require.Equal(t, []any{"operator"}, er["metadata"].(map[string]any)["required_roles"], tc.name)
	}
	status, _ = call(t, e.srv.URL, "PATCH", wsPath, owner, `{"name":"renamed"}`)
	require.Equal(t, 200, status, "an owner still renames its workspace")

	// The operator lends its keys to the workspace, which it is no member of.
	status, doc = call(t, e.srv.URL, "PATCH", wsPath, e.key, `{"use_operator_credentials":true}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, true, data(doc)["use_operator_credentials"])
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", owner, chatBody)
	require.Equal(t, 200, status, "%v", doc)
	status, _ = call(t, e.srv.URL, "PATCH", wsPath, e.key, `{"name":"not yours"}`)
	require.Equal(t, 404, status, "the operator decides only the lending in workspaces it is not in")
}

// TestCLIGrantsOperatorKeys: `perpetuo keys create --operator` is the only
// other way to an operator key.
func TestCLIGrantsOperatorKeys(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	st := store.New(e.pool)
	k, plaintext, err := CreateKey(context.Background(), st, NewKeyRequest{WorkspaceID: e.ws, Role: "admin", Operator: true}, time.Now())
	require.NoError(t, err)
	require.True(t, k.Operator)
	status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces", plaintext, `{"name":"by cli key","owner":{"name":"o"}}`)
	require.Equal(t, http.StatusCreated, status, "%v", doc)
	_, plain2, err := CreateKey(context.Background(), st, NewKeyRequest{WorkspaceID: e.ws, Role: "owner"}, time.Now())
	require.NoError(t, err)
	status, _ = call(t, e.srv.URL, "POST", "/v1/workspaces", plain2, `{"name":"by owner","owner":{"name":"o"}}`)
	require.Equal(t, 403, status)
}
