// Package access is Perpetuo's role-based access control. A key acts with
// its member's role; each management action names the roles allowed to do
// it. Who may touch which workspace is not decided here: a key only ever
// reaches its own workspace, and the HTTP layer answers 404 for others.
package access

import (
	"net/http"
	"slices"
	"strings"

	"github.com/perpetuo/perpetuo/internal/apierr"
)

// Roles, from most to least privileged.
const (
	Owner  = "owner"
	Admin  = "admin"
	Member = "member"
	Viewer = "viewer"
)

// Action is something a role may be allowed to do.
type Action string

// The management actions.
const (
	ReadWorkspace     Action = "read the workspace"
	UpdateWorkspace   Action = "update the workspace"
	DeleteWorkspace   Action = "delete the workspace"
	CreateWorkspace   Action = "create workspaces"
	SetOperatorCreds  Action = "decide whether a workspace uses the operator's provider keys"
	ReadMembers       Action = "read members"
	ManageMembers     Action = "manage members"
	ManageOwners      Action = "manage owners, the owner role or owners' keys"
	ReadAllKeys       Action = "read every key of the workspace"
	ManageAllKeys     Action = "manage every key of the workspace"
	ManageOwnKeys     Action = "create and manage your own keys"
	SetKeyPolicy      Action = "set key limits, ZDR or expiry"
	ReadCredentials   Action = "read provider credentials"
	ManageCredentials Action = "manage provider credentials"
	// ReadAllGenerations: every key's generation records (members read
	// their own keys').
	ReadAllGenerations Action = "read the generations of every key"
	// ReadAllGuardrails: every guardrail of the workspace (members read
	// the ones governing them).
	ReadAllGuardrails Action = "read every guardrail of the workspace"
	ManageGuardrails  Action = "manage guardrails and the workspace budget"
)

// allowed is the policy: which roles may do each action.
var allowed = map[Action][]string{
	ReadWorkspace:      {Owner, Admin, Member, Viewer},
	UpdateWorkspace:    {Owner, Admin},
	DeleteWorkspace:    {Owner},
	ReadMembers:        {Owner, Admin, Member, Viewer},
	ManageMembers:      {Owner, Admin},
	ManageOwners:       {Owner},
	ReadAllKeys:        {Owner, Admin, Viewer},
	ManageAllKeys:      {Owner, Admin},
	ManageOwnKeys:      {Owner, Admin, Member},
	SetKeyPolicy:       {Owner, Admin},
	ReadCredentials:    {Owner, Admin, Viewer},
	ReadAllGenerations: {Owner, Admin, Viewer},
	ManageCredentials:  {Owner, Admin},
	ReadAllGuardrails:  {Owner, Admin, Viewer},
	ManageGuardrails:   {Owner, Admin},
}

// Can reports whether role may do a.
func Can(role string, a Action) bool { return slices.Contains(allowed[a], role) }

// Require returns nil when role may do a, else a 403 permission_denied that
// names the roles needed.
func Require(role string, a Action) error {
	if Can(role, a) {
		return nil
	}
	need := allowed[a]
	return apierr.New(http.StatusForbidden, apierr.PermissionDenied,
		"To %s you need the role %s; this key acts as %s. Ask a member of the workspace with that role.",
		a, strings.Join(need, " or "), role).With("required_roles", need).With("role", role)
}

// RequireOver returns nil when role may manage a member of role target, or
// that member's keys: owners, and keys of owners (which act as owners), are
// managed by owners only; otherwise an admin could mint itself owner powers.
func RequireOver(role, target string) error {
	if target == Owner {
		return Require(role, ManageOwners)
	}
	return nil
}

// Operator is what required_roles names for operator-only actions: the
// operator is not a workspace role but a property of the key.
const Operator = "operator"

// RequireOperator returns nil for an operator key, else a 403
// permission_denied naming the operator as who may do a.
func RequireOperator(operator bool, role string, a Action) error {
	if operator {
		return nil
	}
	need := []string{Operator}
	return apierr.New(http.StatusForbidden, apierr.PermissionDenied,
		"To %s you need the role %s; this key acts as %s. Only the deployment's operator may; ask them.",
		a, Operator, role).With("required_roles", need).With("role", role)
}

// Valid reports whether role is a known role.
func Valid(role string) bool {
	return role == Owner || role == Admin || role == Member || role == Viewer
}
