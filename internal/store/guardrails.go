package store

import (
	"context"
	"fmt"
	"time"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/notify"
)

var _ guardrails.Store = (*Store)(nil)

func guardrailOf(g db.Guardrail) guardrails.Guardrail {
	return guardrails.Guardrail{ID: g.ID, WorkspaceID: g.WorkspaceID, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt,
		Input: guardrails.Input{Name: g.Name, Description: val(g.Description), Limit: g.LimitUsd, Reset: val(g.ResetInterval),
			AllowedModels: g.AllowedModels, AllowedProviders: g.AllowedProviders,
			IgnoredModels: g.IgnoredModels, IgnoredProviders: g.IgnoredProviders,
			EnforceZDR: g.EnforceZdr, IncludeBYOK: g.IncludeByokInBudgets}}
}

func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// Guardrails implements guardrails.Store.
func (s *Store) Guardrails(ctx context.Context, workspaceID string) ([]guardrails.Guardrail, error) {
	rows, err := s.q.GuardrailList(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("list guardrails: %w", err)
	}
	out := make([]guardrails.Guardrail, len(rows))
	for i, r := range rows {
		out[i] = guardrailOf(r)
	}
	return out, nil
}

// Guardrail implements guardrails.Store.
func (s *Store) Guardrail(ctx context.Context, workspaceID, id string) (guardrails.Guardrail, error) {
	g, err := s.q.GuardrailGet(ctx, db.GuardrailGetParams{ID: id, WorkspaceID: workspaceID})
	if isNoRows(err) {
		return guardrails.Guardrail{}, errNotFound
	}
	if err != nil {
		return guardrails.Guardrail{}, fmt.Errorf("get guardrail: %w", err)
	}
	return guardrailOf(g), nil
}

// CreateGuardrail implements guardrails.Store.
func (s *Store) CreateGuardrail(ctx context.Context, workspaceID string, in guardrails.Input, now time.Time) (guardrails.Guardrail, error) {
	var g guardrails.Guardrail
	err := s.change(ctx, notify.Policy, workspaceID, func(q *db.Queries) error {
		r, err := q.GuardrailInsert(ctx, db.GuardrailInsertParams{ID: ids.New(ids.Guardrail, now), WorkspaceID: workspaceID,
			Name: in.Name, Description: ptr(in.Description), LimitUsd: in.Limit, ResetInterval: ptr(in.Reset),
			AllowedModels: orEmpty(in.AllowedModels), AllowedProviders: orEmpty(in.AllowedProviders),
			IgnoredModels: orEmpty(in.IgnoredModels), IgnoredProviders: orEmpty(in.IgnoredProviders),
			EnforceZdr: in.EnforceZDR, IncludeByokInBudgets: in.IncludeBYOK})
		if isForeignKey(err) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("insert guardrail: %w", err)
		}
		g = guardrailOf(r)
		return nil
	})
	return g, err
}

// UpdateGuardrail implements guardrails.Store.
func (s *Store) UpdateGuardrail(ctx context.Context, workspaceID, id string, in guardrails.Input) (guardrails.Guardrail, error) {
	var g guardrails.Guardrail
	err := s.change(ctx, notify.Policy, workspaceID, func(q *db.Queries) error {
		r, err := q.GuardrailUpdate(ctx, db.GuardrailUpdateParams{ID: id, WorkspaceID: workspaceID,
			Name: in.Name, Description: ptr(in.Description), LimitUsd: in.Limit, ResetInterval: ptr(in.Reset),
			AllowedModels: orEmpty(in.AllowedModels), AllowedProviders: orEmpty(in.AllowedProviders),
			IgnoredModels: orEmpty(in.IgnoredModels), IgnoredProviders: orEmpty(in.IgnoredProviders),
			EnforceZdr: in.EnforceZDR, IncludeByokInBudgets: in.IncludeBYOK})
		if isNoRows(err) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("update guardrail: %w", err)
		}
		g = guardrailOf(r)
		return nil
	})
	return g, err
}

// DeleteGuardrail implements guardrails.Store: unassigned from members,
// keys and the workspace default, then deleted, in one transaction. Keys
// are cached with their member's guardrail, so every key of the workspace
// is invalidated (notify.Workspace).
func (s *Store) DeleteGuardrail(ctx context.Context, workspaceID, id string) error {
	return s.change(ctx, notify.Workspace, workspaceID, func(q *db.Queries) error {
		gid := &id
		if err := q.GuardrailUnassignMembers(ctx, db.GuardrailUnassignMembersParams{WorkspaceID: workspaceID, GuardrailID: gid}); err != nil {
			return fmt.Errorf("unassign guardrail from members: %w", err)
		}
		if err := q.GuardrailUnassignKeys(ctx, db.GuardrailUnassignKeysParams{WorkspaceID: workspaceID, GuardrailID: gid}); err != nil {
			return fmt.Errorf("unassign guardrail from keys: %w", err)
		}
		if err := q.GuardrailUnsetDefault(ctx, db.GuardrailUnsetDefaultParams{WorkspaceID: workspaceID, GuardrailID: gid}); err != nil {
			return fmt.Errorf("unset default guardrail: %w", err)
		}
		n, err := q.GuardrailDelete(ctx, db.GuardrailDeleteParams{ID: id, WorkspaceID: workspaceID})
		if err != nil {
			return fmt.Errorf("delete guardrail: %w", err)
		}
		if n == 0 {
			return errNotFound
		}
		return nil
	})
}

// Assignments implements guardrails.Store.
func (s *Store) Assignments(ctx context.Context, workspaceID string) ([]guardrails.Assignment, error) {
	rows, err := s.q.GuardrailAssignments(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("guardrail assignments: %w", err)
	}
	out := make([]guardrails.Assignment, len(rows))
	for i, r := range rows {
		out[i] = guardrails.Assignment{Kind: r.Kind, ID: r.ID, GuardrailID: r.GuardrailID}
	}
	return out, nil
}

// DefaultGuardrail implements guardrails.Store.
func (s *Store) DefaultGuardrail(ctx context.Context, workspaceID string) (string, error) {
	w, err := s.Workspace(ctx, workspaceID)
	if err != nil {
		return "", err
	}
	return w.DefaultGuardrailID, nil
}

// AssignMember implements guardrails.Store. The member's keys are cached
// with its guardrail: notify.Member drops them on every replica.
func (s *Store) AssignMember(ctx context.Context, workspaceID, memberID, guardrailID string) error {
	return s.change(ctx, notify.Member, memberID, func(q *db.Queries) error {
		n, err := q.MemberSetGuardrail(ctx, db.MemberSetGuardrailParams{ID: memberID, WorkspaceID: workspaceID, GuardrailID: ptr(guardrailID)})
		if isForeignKey(err) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("assign member guardrail: %w", err)
		}
		if n == 0 {
			return errNotFound
		}
		return nil
	})
}

// AssignKey implements guardrails.Store.
func (s *Store) AssignKey(ctx context.Context, workspaceID, keyID, guardrailID string) error {
	return s.change(ctx, notify.Key, keyID, func(q *db.Queries) error {
		n, err := q.APIKeySetGuardrail(ctx, db.APIKeySetGuardrailParams{ID: keyID, WorkspaceID: workspaceID, GuardrailID: ptr(guardrailID)})
		if isForeignKey(err) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("assign key guardrail: %w", err)
		}
		if n == 0 {
			return errNotFound
		}
		return nil
	})
}

// MemberRole implements guardrails.Store and keys.Store.
func (s *Store) MemberRole(ctx context.Context, workspaceID, memberID string) (string, error) {
	r, err := s.q.MemberRole(ctx, db.MemberRoleParams{ID: memberID, WorkspaceID: workspaceID})
	if isNoRows(err) {
		return "", errNotFound
	}
	if err != nil {
		return "", fmt.Errorf("member role: %w", err)
	}
	return r, nil
}

// KeyMemberRole implements guardrails.Store.
func (s *Store) KeyMemberRole(ctx context.Context, workspaceID, keyID string) (string, error) {
	r, err := s.q.APIKeyMemberRole(ctx, db.APIKeyMemberRoleParams{ID: keyID, WorkspaceID: workspaceID})
	if isNoRows(err) {
		return "", errNotFound
	}
	if err != nil {
		return "", fmt.Errorf("key member role: %w", err)
	}
	return r, nil
}
