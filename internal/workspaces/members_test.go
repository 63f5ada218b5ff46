package workspaces_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

// TestMemberRulesBeforeTheStore: roles that may not manage members, an
// admin adding an owner and an unknown role are refused before anything
// is read.
func TestMemberRulesBeforeTheStore(t *testing.T) {
	t.Parallel()
	svc := workspaces.NewService(nil, nil, nil)
	ctx := context.Background()
	for _, role := range []string{access.Member, access.Viewer} {
		_, err := svc.CreateMember(ctx, keys.Key{WorkspaceID: "ws_1", Role: role}, workspaces.NewMember{Name: "x", Role: access.Viewer})
		requireError(t, err, 403, apierr.PermissionDenied, "")
		requireError(t, svc.DeleteMember(ctx, keys.Key{WorkspaceID: "ws_1", Role: role}, "mem_1"), 403, apierr.PermissionDenied, "")
	}
	admin := keys.Key{WorkspaceID: "ws_1", Role: access.Admin}
	_, err := svc.CreateMember(ctx, admin, workspaces.NewMember{Name: "x", Role: access.Owner})
	e := requireError(t, err, 403, apierr.PermissionDenied, "")
	require.Equal(t, []string{access.Owner}, e.Metadata["required_roles"])
	_, err = svc.CreateMember(ctx, admin, workspaces.NewMember{Name: "x", Role: "root"})
	requireError(t, err, 400, apierr.InvalidRequest, "/role")
}

// TestOwnersAreManagedByOwners: an admin neither changes nor removes an
// owner, nor makes anyone owner; an owner does.
func TestOwnersAreManagedByOwners(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	_, err := tm.svc.UpdateMember(ctx, tm.admin, tm.owner.MemberID, workspaces.MemberChange{Name: ptr("x")})
	requireError(t, err, 403, apierr.PermissionDenied, "")
	requireError(t, tm.svc.DeleteMember(ctx, tm.admin, tm.owner.MemberID), 403, apierr.PermissionDenied, "")
	_, err = tm.svc.UpdateMember(ctx, tm.admin, tm.member.MemberID, workspaces.MemberChange{Role: ptr(access.Owner)})
	requireError(t, err, 403, apierr.PermissionDenied, "")

	m, err := tm.svc.UpdateMember(ctx, tm.admin, tm.member.MemberID, workspaces.MemberChange{Role: ptr(access.Viewer), Name: ptr("v")})
	require.NoError(t, err)
	require.Equal(t, access.Viewer, m.Role)
	m, err = tm.svc.UpdateMember(ctx, tm.owner, tm.member.MemberID, workspaces.MemberChange{Role: ptr(access.Owner)})
	require.NoError(t, err)
	require.Equal(t, access.Owner, m.Role)
	m, err = tm.svc.CreateMember(ctx, tm.owner, workspaces.NewMember{Name: "second", Email: "s@example.com", Role: access.Owner})
	require.NoError(t, err)
	require.Equal(t, tm.ws.ID, m.WorkspaceID)
	ms, err := tm.svc.Members(ctx, tm.member)
	require.NoError(t, err)
	require.Len(t, ms, 4)
}

// TestLastOwnerStays: the only owner can neither step down nor leave, with
// the API's 409.
func TestLastOwnerStays(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	_, err := tm.svc.UpdateMember(ctx, tm.owner, tm.owner.MemberID, workspaces.MemberChange{Role: ptr(access.Admin)})
	e := requireError(t, err, 409, apierr.Conflict, "")
	require.Equal(t, "A workspace must keep at least one owner; make another member owner first.", e.Message)
	requireError(t, tm.svc.DeleteMember(ctx, tm.owner, tm.owner.MemberID), 409, apierr.Conflict, "")

	_, err = tm.svc.UpdateMember(ctx, tm.owner, tm.admin.MemberID, workspaces.MemberChange{Role: ptr(access.Owner)})
	require.NoError(t, err)
	m, err := tm.svc.UpdateMember(ctx, tm.owner, tm.owner.MemberID, workspaces.MemberChange{Role: ptr(access.Admin)})
	require.NoError(t, err, "another owner remains")
	require.Equal(t, access.Admin, m.Role)
}

// TestMemberNotFound names the member, as the API answers it.
func TestMemberNotFound(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	_, err := tm.svc.Member(ctx, tm.member, "mem_nope")
	e := requireError(t, err, 404, apierr.NotFound, "")
	require.Equal(t, "Member mem_nope not found.", e.Message)
	requireError(t, tm.svc.DeleteMember(ctx, tm.owner, "mem_nope"), 404, apierr.NotFound, "")
}
