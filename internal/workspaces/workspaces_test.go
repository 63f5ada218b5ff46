package workspaces_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/apierr/apierrtest"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/store"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

// team is a workspace with an owner, an admin and a member, as callers of
// the service under test.
type team struct {
	svc                  *workspaces.Service
	st                   *store.Store
	ws                   workspaces.Workspace
	owner, admin, member keys.Key
}

func setup(t *testing.T) team {
	t.Helper()
	ctx := context.Background()
	st := store.New(pgtest.New(t))
	cat, err := catalog.Parse([]byte(`{"providers":[{"slug":"openai","name":"OpenAI","api":"openai"}],"models":[]}`))
	require.NoError(t, err)
	svc := workspaces.NewService(st, guardrails.NewService(st, cat, nil), nil)
	w, o, _, err := st.CreateWorkspace(ctx, workspaces.NewWorkspace{Name: "w", OwnerName: "o", KeyPlaintext: keys.Generate()}, time.Now())
	require.NoError(t, err)
	tm := team{svc: svc, st: st, ws: w, owner: caller(w.ID, o)}
	for role, k := range map[string]*keys.Key{access.Admin: &tm.admin, access.Member: &tm.member} {
		m, err := st.CreateMember(ctx, w.ID, workspaces.NewMember{Name: role, Role: role}, time.Now())
		require.NoError(t, err)
		*k = caller(w.ID, m)
	}
	return tm
}

// caller is a key acting as m.
func caller(workspaceID string, m workspaces.Member) keys.Key {
	return keys.Key{ID: "key_" + m.ID, WorkspaceID: workspaceID, MemberID: m.ID, Role: m.Role}
}

var requireError = apierrtest.Require

// TestOperatorOnly: creating workspaces and lending the operator's
// provider keys are refused to every role before the store is asked.
func TestOperatorOnly(t *testing.T) {
	t.Parallel()
	svc := workspaces.NewService(nil, nil, nil)
	owner := keys.Key{WorkspaceID: "ws_1", Role: access.Owner}
	_, err := svc.Create(context.Background(), owner, workspaces.NewWorkspace{Name: "x"})
	e := requireError(t, err, 403, apierr.PermissionDenied, "")
	require.Equal(t, []string{access.Operator}, e.Metadata["required_roles"])
	_, err = svc.Update(context.Background(), owner, "ws_1", workspaces.WorkspaceChange{UseOperatorCredentials: ptr(true)})
	e = requireError(t, err, 403, apierr.PermissionDenied, "")
	require.Equal(t, []string{access.Operator}, e.Metadata["required_roles"])
}

// TestOperatorCreates: the new owner's key is never an operator key, even
// when asked for, and its plaintext is the key's.
func TestOperatorCreates(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	op := tm.member
	op.Operator = true
	c, err := tm.svc.Create(ctx, op, workspaces.NewWorkspace{Name: "new", OwnerName: "boss", KeyOperator: true})
	require.NoError(t, err)
	require.Equal(t, "new", c.Workspace.Name)
	require.Equal(t, access.Owner, c.Owner.Role)
	k, err := tm.st.KeyByHash(ctx, keys.Hash(c.Plaintext))
	require.NoError(t, err)
	require.Equal(t, c.Key.ID, k.ID)
	require.False(t, k.Operator)
}

// TestOperatorLendsOnAnyWorkspace: an operator switches its provider keys
// on another workspace, but changes nothing else there.
func TestOperatorLendsOnAnyWorkspace(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	other, _, _, err := tm.st.CreateWorkspace(ctx, workspaces.NewWorkspace{Name: "other", OwnerName: "o", KeyPlaintext: keys.Generate()}, time.Now())
	require.NoError(t, err)
	op := tm.member
	op.Operator = true
	w, err := tm.svc.Update(ctx, op, other.ID, workspaces.WorkspaceChange{UseOperatorCredentials: ptr(true)})
	require.NoError(t, err)
	require.True(t, w.UseOperatorCredentials)
	_, err = tm.svc.Update(ctx, op, other.ID, workspaces.WorkspaceChange{UseOperatorCredentials: ptr(false), Name: ptr("mine")})
	e := requireError(t, err, 404, apierr.NotFound, "")
	require.Equal(t, "Workspace "+other.ID+" not found.", e.Message)
}

// TestOtherWorkspacesAreNotFound: another workspace answers exactly as
// one that does not exist.
func TestOtherWorkspacesAreNotFound(t *testing.T) {
	t.Parallel()
	svc := workspaces.NewService(nil, nil, nil)
	owner := keys.Key{WorkspaceID: "ws_1", Role: access.Owner}
	_, err := svc.Get(context.Background(), owner, "ws_2")
	e := requireError(t, err, 404, apierr.NotFound, "")
	require.Equal(t, "Workspace ws_2 not found.", e.Message)
	_, err = svc.Update(context.Background(), owner, "ws_2", workspaces.WorkspaceChange{Name: ptr("x")})
	requireError(t, err, 404, apierr.NotFound, "")
	requireError(t, svc.Delete(context.Background(), owner, "ws_2"), 404, apierr.NotFound, "")
}

// TestUpdateRoles: admins and owners update, owners alone delete.
func TestUpdateRoles(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	_, err := tm.svc.Update(ctx, tm.member, tm.ws.ID, workspaces.WorkspaceChange{Name: ptr("x")})
	requireError(t, err, 403, apierr.PermissionDenied, "")
	w, err := tm.svc.Update(ctx, tm.admin, tm.ws.ID, workspaces.WorkspaceChange{Name: ptr("renamed")})
	require.NoError(t, err)
	require.Equal(t, "renamed", w.Name)
	requireError(t, tm.svc.Delete(ctx, tm.admin, tm.ws.ID), 403, apierr.PermissionDenied, "")
	require.NoError(t, tm.svc.Delete(ctx, tm.owner, tm.ws.ID))
	_, err = tm.svc.Get(ctx, tm.owner, tm.ws.ID)
	requireError(t, err, 404, apierr.NotFound, "")
}

// TestBudget: a period needs a limit; a limit removed takes its period
// along.
func TestBudget(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	_, err := tm.svc.Update(ctx, tm.admin, tm.ws.ID, workspaces.WorkspaceChange{Reset: "daily"})
	requireError(t, err, 400, apierr.InvalidRequest, "/reset_interval")
	_, err = tm.svc.Update(ctx, tm.member, tm.ws.ID, workspaces.WorkspaceChange{SetLimit: true})
	requireError(t, err, 403, apierr.PermissionDenied, "")
	w, err := tm.svc.Update(ctx, tm.admin, tm.ws.ID, workspaces.WorkspaceChange{SetLimit: true,
		Limit: decimal.NewNullDecimal(decimal.NewFromInt(5)), Reset: "daily"})
	require.NoError(t, err)
	require.Equal(t, "daily", w.Reset)
	w, err = tm.svc.Update(ctx, tm.admin, tm.ws.ID, workspaces.WorkspaceChange{SetLimit: true, Reset: "weekly"})
	require.NoError(t, err)
	require.False(t, w.Limit.Valid)
	require.Empty(t, w.Reset)
}

// TestDefaultGuardrailMustExist names the field; "" clears it.
func TestDefaultGuardrailMustExist(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	_, err := tm.svc.Update(ctx, tm.admin, tm.ws.ID, workspaces.WorkspaceChange{DefaultGuardrailID: ptr("gr_nope")})
	requireError(t, err, 400, apierr.InvalidRequest, "/default_guardrail_id")
	w, err := tm.svc.Update(ctx, tm.admin, tm.ws.ID, workspaces.WorkspaceChange{DefaultGuardrailID: ptr("")})
	require.NoError(t, err)
	require.Empty(t, w.DefaultGuardrailID)
}

func ptr[T any](v T) *T { return &v }
