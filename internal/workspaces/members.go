package workspaces

import (
	"context"
	"net/http"
	"time"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/keys"
)

// Member is a person (or service) in a workspace, with a role.
type Member struct {
	ID          string
	WorkspaceID string
	Name        string
	Email       string
	Role        string
	GuardrailID string
	CreatedAt   time.Time
}

// NewMember is a member to add.
type NewMember struct {
	Name, Email, Role string
}

// MemberChange is what a member update changes: nil fields are kept.
type MemberChange struct {
	Name, Email, Role *string
}

// Members lists the caller's workspace's members.
func (s *Service) Members(ctx context.Context, caller keys.Key) ([]Member, error) {
	if err := access.Require(caller.Role, access.ReadMembers); err != nil {
		return nil, err
	}
	return s.store.Members(ctx, caller.WorkspaceID)
}

// Member returns one member of the caller's workspace.
func (s *Service) Member(ctx context.Context, caller keys.Key, id string) (Member, error) {
	if err := access.Require(caller.Role, access.ReadMembers); err != nil {
		return Member{}, err
	}
	m, err := s.store.Member(ctx, caller.WorkspaceID, id)
	if err != nil {
		return Member{}, apiError(err, "Member", id)
	}
	return m, nil
}

// CreateMember adds a member to the caller's workspace; only owners add
// owners.
func (s *Service) CreateMember(ctx context.Context, caller keys.Key, n NewMember) (Member, error) {
	if err := access.Require(caller.Role, access.ManageMembers); err != nil {
		return Member{}, err
	}
	if err := validRole(n.Role); err != nil {
		return Member{}, err
	}
	if err := access.RequireOver(caller.Role, n.Role); err != nil {
		return Member{}, err
	}
	m, err := s.store.CreateMember(ctx, caller.WorkspaceID, n, s.now())
	if err != nil {
		return Member{}, apiError(err, "Workspace", caller.WorkspaceID)
	}
	return m, nil
}

// UpdateMember applies c to a member: an owner, or the owner role, only by
// owners; never the last owner's demotion.
func (s *Service) UpdateMember(ctx context.Context, caller keys.Key, id string, c MemberChange) (Member, error) {
	cur, err := s.managed(ctx, caller, id)
	if err != nil {
		return Member{}, err
	}
	if c.Role != nil && *c.Role == cur.Role {
		c.Role = nil // no role change: nothing to guard
	}
	if c.Role != nil {
		if err := validRole(*c.Role); err != nil {
			return Member{}, err
		}
		if err := access.RequireOver(caller.Role, *c.Role); err != nil {
			return Member{}, err
		}
	}
	m, err := s.store.UpdateMember(ctx, caller.WorkspaceID, id, c)
	if err != nil {
		return Member{}, apiError(err, "Member", id)
	}
	return m, nil
}

// DeleteMember removes a member and revokes its keys: an owner only by
// owners, and never the last one.
func (s *Service) DeleteMember(ctx context.Context, caller keys.Key, id string) error {
	if _, err := s.managed(ctx, caller, id); err != nil {
		return err
	}
	return apiError(s.store.DeleteMember(ctx, caller.WorkspaceID, id), "Member", id)
}

// managed loads a member the caller may manage: owners only by owners.
func (s *Service) managed(ctx context.Context, caller keys.Key, id string) (Member, error) {
	if err := access.Require(caller.Role, access.ManageMembers); err != nil {
		return Member{}, err
	}
	cur, err := s.store.Member(ctx, caller.WorkspaceID, id)
	if err != nil {
		return Member{}, apiError(err, "Member", id)
	}
	if err := access.RequireOver(caller.Role, cur.Role); err != nil {
		return Member{}, err
	}
	return cur, nil
}

// validRole refuses a role that is none of access's (the spec's enum
// refuses it first over HTTP).
func validRole(role string) error {
	if access.Valid(role) {
		return nil
	}
	return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
		"role must be owner, admin, member or viewer.").With("field", "/role")
}
