package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/notify"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

func memberOf(m db.Member) workspaces.Member {
	return workspaces.Member{ID: m.ID, WorkspaceID: m.WorkspaceID, Name: m.Name, Email: val(m.Email), Role: m.Role,
		GuardrailID: val(m.GuardrailID), CreatedAt: m.CreatedAt}
}

// Members implements workspaces.Store.
func (s *Store) Members(ctx context.Context, workspaceID string) ([]workspaces.Member, error) {
	rows, err := s.q.MemberList(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	out := make([]workspaces.Member, len(rows))
	for i, r := range rows {
		out[i] = memberOf(r)
	}
	return out, nil
}

// Member implements workspaces.Store.
func (s *Store) Member(ctx context.Context, workspaceID, id string) (workspaces.Member, error) {
	m, err := s.q.MemberGetByID(ctx, db.MemberGetByIDParams{ID: id, WorkspaceID: workspaceID})
	if isNoRows(err) {
		return workspaces.Member{}, errNotFound
	}
	if err != nil {
		return workspaces.Member{}, fmt.Errorf("get member: %w", err)
	}
	return memberOf(m), nil
}

// CreateMember implements workspaces.Store.
func (s *Store) CreateMember(ctx context.Context, workspaceID string, n workspaces.NewMember, now time.Time) (workspaces.Member, error) {
	m, err := s.q.MemberInsert(ctx, db.MemberInsertParams{ID: ids.New(ids.Member, now), WorkspaceID: workspaceID, Name: n.Name, Email: ptr(n.Email), Role: n.Role})
	if isForeignKey(err) {
		return workspaces.Member{}, errNotFound
	}
	if err != nil {
		return workspaces.Member{}, fmt.Errorf("insert member: %w", err)
	}
	return memberOf(m), nil
}

// UpdateMember implements workspaces.Store: it changes the fields that are
// set. The member's keys pick up a new role on their next request, on
// every replica.
func (s *Store) UpdateMember(ctx context.Context, workspaceID, id string, c workspaces.MemberChange) (workspaces.Member, error) {
	var m workspaces.Member
	err := s.change(ctx, notify.Member, id, func(q *db.Queries) error {
		if c.Role != nil && *c.Role != "owner" {
			if err := keepAnOwner(ctx, q, workspaceID, id); err != nil {
				return err
			}
		}
		dm, err := q.MemberUpdate(ctx, db.MemberUpdateParams{ID: id, WorkspaceID: workspaceID, Name: c.Name, Email: c.Email, Role: c.Role})
		if isNoRows(err) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("update member: %w", err)
		}
		m = memberOf(dm)
		return nil
	})
	return m, err
}

// DeleteMember implements workspaces.Store: the member's keys are revoked
// with it.
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
			return errNotFound
		}
		return nil
	})
}

// keepAnOwner fails with workspaces.ErrLastOwner when id is the
// workspace's only owner. The owners are locked, so two concurrent
// demotions cannot both pass.
func keepAnOwner(ctx context.Context, q *db.Queries, workspaceID, id string) error {
	owners, err := q.MemberLockOwners(ctx, workspaceID)
	if err != nil {
		return fmt.Errorf("lock owners: %w", err)
	}
	if len(owners) == 1 && slices.Contains(owners, id) {
		return workspaces.ErrLastOwner
	}
	return nil
}
