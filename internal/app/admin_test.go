package app

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOperatorCreatesKeys covers `perpetuo keys create`: a key for a new
// member of an existing workspace, and a new workspace with its owner key.
func TestOperatorCreatesKeys(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	ctx := context.Background()

	k, plaintext, err := CreateKey(ctx, e.app.Store, NewKeyRequest{WorkspaceID: e.ws, Role: "viewer", MemberName: "auditor"}, time.Now())
	require.NoError(t, err)
	require.Equal(t, e.ws, k.WorkspaceID)
	status, doc := call(t, e.srv.URL, "GET", "/v1/key", plaintext, "")
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, "viewer", data(doc)["role"])
	status, _ = call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/members", plaintext, `{"name":"x","role":"member"}`)
	require.Equal(t, 403, status, "a viewer's key cannot manage members")

	k, plaintext, err = CreateKey(ctx, e.app.Store, NewKeyRequest{WorkspaceName: "team b"}, time.Now())
	require.NoError(t, err)
	require.NotEqual(t, e.ws, k.WorkspaceID)
	status, doc = call(t, e.srv.URL, "GET", "/v1/workspaces/"+k.WorkspaceID, plaintext, "")
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, "team b", data(doc)["name"])
	status, doc = call(t, e.srv.URL, "GET", "/v1/key", plaintext, "")
	require.Equal(t, 200, status)
	require.Equal(t, "owner", data(doc)["role"])

	// A member of another workspace cannot get a key here: it would act
	// with that member's role in this workspace.
	_, _, err = CreateKey(ctx, e.app.Store, NewKeyRequest{WorkspaceID: e.ws, MemberID: k.MemberID}, time.Now())
	require.ErrorContains(t, err, "not found")
	_, _, err = CreateKey(ctx, e.app.Store, NewKeyRequest{WorkspaceID: e.ws, Role: "wizard"}, time.Now())
	require.ErrorContains(t, err, "use owner, admin, member or viewer")
	_, _, err = CreateKey(ctx, e.app.Store, NewKeyRequest{WorkspaceID: "ws_nope", Role: "member"}, time.Now())
	require.Error(t, err)
}
