package server

import (
	"context"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/keys"
)

// inWorkspace returns the caller's key after checking the path names the
// caller's own workspace (and that its role may read it). Another
// workspace is answered 404, exactly as a workspace that does not exist, so
// a key never learns what other workspaces exist. What the caller may do
// there is its domain service's to decide.
func inWorkspace(ctx context.Context, workspaceID string) (keys.Key, error) {
	k := callerKey(ctx)
	if workspaceID != k.WorkspaceID {
		return keys.Key{}, apierr.New(http.StatusNotFound, apierr.NotFound, "Workspace %s not found.", workspaceID)
	}
	if err := access.Require(k.Role, access.ReadWorkspace); err != nil {
		return keys.Key{}, err
	}
	return k, nil
}

// present reports whether the request body has field at all, null
// included: the generated types decode both null and absent to nil, and a
// PATCH keeps an absent field but clears a null one.
func present(ctx context.Context, field string) bool {
	return gjson.GetBytes(rawBody(ctx), field).Exists()
}
