package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/notify"
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

func memberOf(m db.Member) Member {
	return Member{ID: m.ID, WorkspaceID: m.WorkspaceID, Name: m.Name, Email: val(m.Email), Role: m.Role,
		GuardrailID: val(m.GuardrailID), CreatedAt: m.CreatedAt}
}

// Members lists a workspace's members.
func (s *Store) Members(ctx context.Context, workspaceID string) ([]Member, error) {
	rows, err := s.q.MemberList(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	out := make([]Member, len(rows))
	for i, r := range rows {
		out[i] = memberOf(r)
	}
	return out, nil
}

// Member returns one member of a workspace.
func (s *Store) Member(ctx context.Context, workspaceID, id string) (Member, error) {
	m, err := s.q.MemberGetByID(ctx, db.MemberGetByIDParams{ID: id, WorkspaceID: workspaceID})
	if isNoRows(err) {
		return Member{}, ErrNotFound
	}
	if err != nil {
		return Member{}, fmt.Errorf("get member: %w", err)
	}
	return memberOf(m), nil
}

// CreateMember adds a member.
func (s *Store) CreateMember(ctx context.Context, workspaceID, name, email, role string, now time.Time) (Member, error) {
	m, err := s.q.MemberInsert(ctx, db.MemberInsertParams{ID: ids.New(ids.Member, now), WorkspaceID: workspaceID, Name: name, Email: ptr(email), Role: role})
	if isForeignKey(err) {
		return Member{}, ErrNotFound
	}
	if err != nil {
		return Member{}, fmt.Errorf("insert member: %w", err)
	}
	return memberOf(m), nil
}

// UpdateMember changes the fields that are set. Demoting the last owner
// fails with ErrLastOwner. The member's keys pick up a new role on their
// next request, on every replica.
func (s *Store) UpdateMember(ctx context.Context, workspaceID, id string, name, email, role *string) (Member, error) {
	var m Member
	err := s.change(ctx, notify.Member, id, func(q *db.Queries) error {
		if role != nil && *role != "owner" {
			if err := keepAnOwner(ctx, q, workspaceID, id); err != nil {
				return err
			}
		}
		dm, err := q.MemberUpdate(ctx, db.MemberUpdateParams{ID: id, WorkspaceID: workspaceID, Name: name, Email: email, Role: role})
		if isNoRows(err) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("update member: %w", err)
		}
		m = memberOf(dm)
		return nil
	})
	return m, err
}

// DeleteMember removes a member and revokes its keys (ErrLastOwner for the
// last owner).
func (s *Store) DeleteMember(ctx context.Context, workspaceID, id string) error {
	return s.change(ctx, notify.Member, id, func(q *db.Queries) error {
		if err := keepAnOwner(ctx, q, workspaceID, id); err != nil {
			return err
		}
		n, err := q.MemberDelete(ctx, db.MemberDeleteParams{ID: id, WorkspaceID: workspaceID})
		if err != nil {
			return fmt.Errorf("delete member: %w", err)
		}
		if n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// keepAnOwner fails when id is the workspace's only owner. The owners are
// locked, so two concurrent demotions cannot both pass.
func keepAnOwner(ctx context.Context, q *db.Queries, workspaceID, id string) error {
	owners, err := q.MemberLockOwners(ctx, workspaceID)
	if err != nil {
		return fmt.Errorf("lock owners: %w", err)
	}
	if len(owners) == 1 && slices.Contains(owners, id) {
		return ErrLastOwner
	}
	return nil
}
