package access

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
)

func TestPolicy(t *testing.T) {
	t.Parallel()
	// Every role × a representative action: the policy in one table.
	want := map[Action][4]bool{ // owner, admin, member, viewer
		ReadWorkspace:      {true, true, true, true},
		UpdateWorkspace:    {true, true, false, false},
		DeleteWorkspace:    {true, false, false, false},
		CreateWorkspace:    {false, false, false, false}, // no role: operator keys only
		ManageMembers:      {true, true, false, false},
		ManageOwners:       {true, false, false, false},
		ReadAllKeys:        {true, true, false, true},
		ManageAllKeys:      {true, true, false, false},
		ManageOwnKeys:      {true, true, true, false},
		SetKeyPolicy:       {true, true, false, false},
		ReadCredentials:    {true, true, false, true},
		ManageCredentials:  {true, true, false, false},
		ReadAllGenerations: {true, true, false, true},
	}
	for a, row := range want {
		for i, role := range []string{Owner, Admin, Member, Viewer} {
			require.Equal(t, row[i], Can(role, a), "%s may %s", role, a)
		}
	}
}

func TestRequireNamesTheRoleNeeded(t *testing.T) {
	t.Parallel()
	require.NoError(t, Require(Owner, DeleteWorkspace))
	err := Require(Viewer, ManageCredentials)
	var e *apierr.Error
	require.True(t, errors.As(err, &e))
	require.Equal(t, 403, e.Status)
	require.Equal(t, apierr.PermissionDenied, e.Type)
	require.Contains(t, e.Message, "owner or admin")
	require.Contains(t, e.Message, "acts as viewer")
}

func TestRequireOperator(t *testing.T) {
	t.Parallel()
	require.NoError(t, RequireOperator(true, Member, CreateWorkspace))
	e := apierr.From(RequireOperator(false, Owner, CreateWorkspace))
	require.Equal(t, 403, e.Status)
	require.Equal(t, []string{Operator}, e.Metadata["required_roles"])
	require.Contains(t, e.Message, "acts as owner")
}

// TestRequireOver: only owners manage owners; anyone who may manage
// members manages the other roles.
func TestRequireOver(t *testing.T) {
	t.Parallel()
	require.NoError(t, RequireOver(Owner, Owner))
	require.NoError(t, RequireOver(Admin, Admin))
	require.NoError(t, RequireOver(Admin, Member))
	e := apierr.From(RequireOver(Admin, Owner))
	require.Equal(t, 403, e.Status)
	require.Equal(t, []string{Owner}, e.Metadata["required_roles"])
}
