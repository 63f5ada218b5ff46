package keys_test

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/apierr/apierrtest"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/store"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

// team is a workspace with one member of each role, a key each, as
// callers of the service under test.
type team struct {
	svc                          *keys.Service
	st                           *store.Store
	owner, admin, member, viewer keys.Key
}

func setup(t *testing.T) team {
	t.Helper()
	ctx := context.Background()
	st := store.New(pgtest.New(t))
	w, owner, ok, err := st.CreateWorkspace(ctx, workspaces.NewWorkspace{Name: "w", OwnerName: "o", KeyPlaintext: keys.Generate()}, time.Now())
	require.NoError(t, err)
	ok.Role = owner.Role
	tm := team{svc: keys.NewService(st, nil), st: st, owner: ok}
	for _, c := range []struct {
		role string
		key  *keys.Key
	}{{"admin", &tm.admin}, {"member", &tm.member}, {"viewer", &tm.viewer}} {
		m, err := st.CreateMember(ctx, w.ID, workspaces.NewMember{Name: c.role, Role: c.role}, time.Now())
		require.NoError(t, err)
		k, err := st.CreateAPIKey(ctx, keys.Key{WorkspaceID: w.ID, MemberID: m.ID, Name: c.role}, keys.Generate(), time.Now())
		require.NoError(t, err)
		k.Role = c.role
		*c.key = k
	}
	return tm
}

var requireError = apierrtest.Require

// TestMemberCannotCreateForAnother: refused before the store is asked, so
// a nil store serves.
func TestMemberCannotCreateForAnother(t *testing.T) {
	t.Parallel()
	svc := keys.NewService(nil, nil)
	caller := keys.Key{WorkspaceID: "ws_1", MemberID: "mem_1", Role: "member"}
	_, _, err := svc.Create(context.Background(), caller, "mem_2", keys.Change{Name: ptr("x")})
	requireError(t, err, 403, apierr.PermissionDenied, "")
	_, _, err = svc.Create(context.Background(), keys.Key{WorkspaceID: "ws_1", MemberID: "mem_1", Role: "viewer"}, "", keys.Change{Name: ptr("x")})
	requireError(t, err, 403, apierr.PermissionDenied, "")
}

// TestOwnersKeysAreTheOwners: an admin manages everyone's keys but an
// owner's, and mints none for an owner.
func TestOwnersKeysAreTheOwners(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	_, _, err := tm.svc.Create(ctx, tm.admin, tm.owner.MemberID, keys.Change{Name: ptr("x")})
	requireError(t, err, 403, apierr.PermissionDenied, "")
	_, err = tm.svc.Update(ctx, tm.admin, tm.owner.ID, keys.Change{Name: ptr("renamed")})
	requireError(t, err, 403, apierr.PermissionDenied, "")
	requireError(t, tm.svc.Delete(ctx, tm.admin, tm.owner.ID), 403, apierr.PermissionDenied, "")
	_, err = tm.svc.Get(ctx, tm.admin, tm.owner.ID)
	require.NoError(t, err, "reading is not managing")

	k, _, err := tm.svc.Create(ctx, tm.admin, tm.member.MemberID, keys.Change{Name: ptr("for member")})
	require.NoError(t, err)
	require.Equal(t, tm.member.MemberID, k.MemberID)
	_, _, err = tm.svc.Create(ctx, tm.owner, tm.owner.MemberID, keys.Change{Name: ptr("mine")})
	require.NoError(t, err)
	_, err = tm.svc.Update(ctx, tm.owner, tm.admin.ID, keys.Change{Name: ptr("renamed")})
	require.NoError(t, err)
}

// TestMembersSeeAndManageTheirOwn: another member's key is out of reach,
// in the list and by id.
func TestMembersSeeAndManageTheirOwn(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	ks, err := tm.svc.List(ctx, tm.member)
	require.NoError(t, err)
	require.Len(t, ks, 1)
	require.Equal(t, tm.member.ID, ks[0].ID)
	all, err := tm.svc.List(ctx, tm.viewer)
	require.NoError(t, err)
	require.Len(t, all, 4, "a viewer reads every key")
	_, err = tm.svc.Get(ctx, tm.member, tm.admin.ID)
	requireError(t, err, 403, apierr.PermissionDenied, "")
	_, err = tm.svc.Update(ctx, tm.member, tm.member.ID, keys.Change{Name: ptr("mine")})
	require.NoError(t, err)
	_, err = tm.svc.Update(ctx, tm.viewer, tm.viewer.ID, keys.Change{Name: ptr("mine")})
	requireError(t, err, 403, apierr.PermissionDenied, "")
}

// TestPolicyFieldsNeedAdmin: a member sets no limit, ZDR or expiry, on a
// new key or its own, not even to the zero value, and cannot re-enable a
// key an admin disabled; an admin can.
func TestPolicyFieldsNeedAdmin(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	soon := time.Now().Add(time.Hour)
	for name, c := range map[string]keys.Change{
		"limit":         {SetLimit: true, Limit: decimal.NewNullDecimal(decimal.NewFromInt(5))},
		"null limit":    {SetLimit: true},
		"limit_reset":   {SetLimitReset: true, LimitReset: "daily"},
		"byok in limit": {IncludeBYOKInLimit: ptr(false)},
		"require_zdr":   {RequireZDR: ptr(true)},
		"expires_at":    {SetExpiresAt: true, ExpiresAt: &soon},
	} {
		_, err := tm.svc.Update(ctx, tm.member, tm.member.ID, c)
		requireError(t, err, 403, apierr.PermissionDenied, "")
		c.Name = ptr("new")
		_, _, err = tm.svc.Create(ctx, tm.member, "", c)
		requireError(t, err, 403, apierr.PermissionDenied, "")
		_, err = tm.svc.Update(ctx, tm.admin, tm.member.ID, c)
		require.NoError(t, err, name)
	}

	_, err := tm.svc.Update(ctx, tm.admin, tm.member.ID, keys.Change{Disabled: ptr(true)})
	require.NoError(t, err)
	_, err = tm.svc.Update(ctx, tm.member, tm.member.ID, keys.Change{Disabled: ptr(false)})
	requireError(t, err, 403, apierr.PermissionDenied, "")
	_, err = tm.svc.Update(ctx, tm.member, tm.member.ID, keys.Change{Disabled: ptr(true)})
	require.NoError(t, err, "disabling again is no policy change")
	k, err := tm.svc.Update(ctx, tm.admin, tm.member.ID, keys.Change{Disabled: ptr(false)})
	require.NoError(t, err)
	require.False(t, k.Disabled)
}

// TestChangeKeepsAndClears: an absent field keeps its value, a set zero
// value clears it.
func TestChangeKeepsAndClears(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	soon := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	k, err := tm.svc.Update(ctx, tm.admin, tm.member.ID, keys.Change{SetLimit: true, Limit: decimal.NewNullDecimal(decimal.NewFromInt(5)),
		SetLimitReset: true, LimitReset: "weekly", SetExpiresAt: true, ExpiresAt: &soon})
	require.NoError(t, err)
	k, err = tm.svc.Update(ctx, tm.admin, tm.member.ID, keys.Change{Name: ptr("renamed")})
	require.NoError(t, err)
	require.Equal(t, "renamed", k.Name)
	require.True(t, k.Limit.Valid)
	require.Equal(t, "weekly", k.LimitReset)
	require.NotNil(t, k.ExpiresAt)
	k, err = tm.svc.Update(ctx, tm.admin, tm.member.ID, keys.Change{SetLimit: true, SetLimitReset: true, SetExpiresAt: true})
	require.NoError(t, err)
	require.False(t, k.Limit.Valid)
	require.Empty(t, k.LimitReset)
	require.Nil(t, k.ExpiresAt)
}

// TestExpiryMustBeInTheFuture names /expires_at, on create and update.
func TestExpiryMustBeInTheFuture(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	past := time.Now().Add(-time.Minute)
	_, _, err := tm.svc.Create(ctx, tm.admin, "", keys.Change{Name: ptr("x"), SetExpiresAt: true, ExpiresAt: &past})
	requireError(t, err, 400, apierr.InvalidRequest, "/expires_at")
	_, err = tm.svc.Update(ctx, tm.admin, tm.member.ID, keys.Change{SetExpiresAt: true, ExpiresAt: &past})
	e := requireError(t, err, 400, apierr.InvalidRequest, "/expires_at")
	require.Contains(t, e.Message, "disable the key")
}

// TestNotFound names what is missing, as the API answers it.
func TestNotFound(t *testing.T) {
	t.Parallel()
	tm := setup(t)
	ctx := context.Background()
	_, err := tm.svc.Get(ctx, tm.admin, "key_nope")
	e := requireError(t, err, 404, apierr.NotFound, "")
	require.Equal(t, "Key key_nope not found.", e.Message)
	e = requireError(t, tm.svc.Delete(ctx, tm.owner, "key_nope"), 404, apierr.NotFound, "")
	require.Equal(t, "Key key_nope not found.", e.Message)
	_, _, err = tm.svc.Create(ctx, tm.admin, "mem_nope", keys.Change{Name: ptr("x")})
	e = requireError(t, err, 404, apierr.NotFound, "")
	require.Equal(t, "Member mem_nope not found.", e.Message)
}

func ptr[T any](v T) *T { return &v }
