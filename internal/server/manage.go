package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/store"
)

// inWorkspace returns the caller's key after checking the path names the
// caller's own workspace and that its role may do a. Another workspace is
// answered 404, exactly as a workspace that does not exist, so a key never
// learns what other workspaces exist.
func inWorkspace(ctx context.Context, workspaceID string, a access.Action) (keys.Key, error) {
	k := callerKey(ctx)
	if workspaceID != k.WorkspaceID {
		return keys.Key{}, notFoundIn("Workspace", workspaceID)
	}
	if err := access.Require(k.Role, a); err != nil {
		return keys.Key{}, err
	}
	return k, nil
}

func notFoundIn(what, id string) *apierr.Error {
	return apierr.New(http.StatusNotFound, apierr.NotFound, "%s %s not found.", what, id)
}

// storeError maps storage errors to the envelope.
func storeError(err error, what, id string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFoundIn(what, id)
	case errors.Is(err, store.ErrLastOwner):
		return apierr.New(http.StatusConflict, apierr.Conflict,
			"A workspace must keep at least one owner; make another member owner first.")
	}
	return err
}

// isNull reports whether the request body sets field to JSON null (PATCH
// clears the field), as opposed to leaving it out (PATCH keeps it).
func isNull(ctx context.Context, field string) bool {
	v := gjson.GetBytes(rawBody(ctx), field)
	return v.Exists() && v.Type == gjson.Null
}

func invalid(field, format string, args ...any) *apierr.Error {
	return apierr.New(http.StatusBadRequest, apierr.InvalidRequest, format, args...).With("field", field)
}

// present reports whether the request body has field at all (null included).
func present(ctx context.Context, field string) bool {
	return gjson.GetBytes(rawBody(ctx), field).Exists()
}

// ownerGuard: owners, and keys of owners (which act as owners), are managed
// by owners only; otherwise an admin could mint itself owner powers.
func ownerGuard(caller keys.Key, targetRole string) error {
	if targetRole == access.Owner {
		return access.Require(caller.Role, access.ManageOwners)
	}
	return nil
}
