package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/notify"
	"github.com/perpetuo/perpetuo/internal/policy"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

var _ workspaces.Store = (*Store)(nil)

func workspaceOf(w db.Workspace) workspaces.Workspace {
	return workspaces.Workspace{ID: w.ID, Name: w.Name, UseOperatorCredentials: w.UseOperatorCredentials, RequireZDR: w.RequireZdr, CreatedAt: w.CreatedAt,
		DefaultGuardrailID: val(w.DefaultGuardrailID), Limit: w.LimitUsd, Reset: val(w.ResetInterval)}
}

// CreateWorkspace implements workspaces.Store.
func (s *Store) CreateWorkspace(ctx context.Context, n workspaces.NewWorkspace, now time.Time) (workspaces.Workspace, workspaces.Member, keys.Key, error) {
	var (
		w workspaces.Workspace
		m workspaces.Member
		k keys.Key
	)
	err := s.tx(ctx, func(_ pgx.Tx, q *db.Queries) error {
		dw, err := q.WorkspaceInsert(ctx, db.WorkspaceInsertParams{ID: ids.New(ids.Workspace, now), Name: n.Name, UseOperatorCredentials: n.UseOperatorCredentials})
		if err != nil {
			return fmt.Errorf("insert workspace: %w", err)
		}
		dm, err := q.MemberInsert(ctx, db.MemberInsertParams{ID: ids.New(ids.Member, now), WorkspaceID: dw.ID, Name: n.OwnerName, Email: ptr(n.OwnerEmail), Role: "owner"})
		if err != nil {
			return fmt.Errorf("insert owner: %w", err)
		}
		dk, err := q.APIKeyInsert(ctx, db.APIKeyInsertParams{
			ID: ids.New(ids.Key, now), WorkspaceID: dw.ID, MemberID: dm.ID, Name: "owner",
			Label: keys.Label(n.KeyPlaintext), Hash: keys.Hash(n.KeyPlaintext), Operator: n.KeyOperator,
		})
		if err != nil {
			return fmt.Errorf("insert key: %w", err)
		}
		w, m, k = workspaceOf(dw), memberOf(dm), keyOf(dk, dm.Role)
		return nil
	})
	if err != nil {
		return workspaces.Workspace{}, workspaces.Member{}, keys.Key{}, fmt.Errorf("create workspace: %w", err)
	}
	return w, m, k, nil
}

// Workspace implements workspaces.Store.
func (s *Store) Workspace(ctx context.Context, id string) (workspaces.Workspace, error) {
	w, err := s.q.WorkspaceGetByID(ctx, id)
	if isNoRows(err) {
		return workspaces.Workspace{}, errNotFound
	}
	if err != nil {
		return workspaces.Workspace{}, fmt.Errorf("get workspace: %w", err)
	}
	return workspaceOf(w), nil
}

// UpdateWorkspace implements workspaces.Store: it changes the fields that
// are set.
func (s *Store) UpdateWorkspace(ctx context.Context, id string, c workspaces.WorkspaceChange) (workspaces.Workspace, error) {
	var w workspaces.Workspace
	err := s.change(ctx, notify.Workspace, id, func(q *db.Queries) error {
		p := db.WorkspaceUpdateParams{ID: id, Name: c.Name, UseOperatorCredentials: c.UseOperatorCredentials, RequireZdr: c.RequireZDR,
			SetLimit: c.SetLimit, LimitUsd: c.Limit, ResetInterval: ptr(c.Reset)}
		if c.DefaultGuardrailID != nil {
			p.SetDefaultGuardrail, p.DefaultGuardrailID = true, ptr(*c.DefaultGuardrailID)
		}
		dw, err := q.WorkspaceUpdate(ctx, p)
		if isNoRows(err) {
			return errNotFound
		}
		if isForeignKey(err) {
			// The default guardrail is gone, not the workspace: only
			// guardrails' sentinel, never workspaces'.
			return guardrails.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("update workspace: %w", err)
		}
		if c.SetLimit && c.Limit.Valid {
			if err := q.SpendSeedWorkspace(ctx, db.SpendSeedWorkspaceParams{WorkspaceID: id,
				PeriodStart: budget.PeriodStart(c.Reset, time.Now())}); err != nil {
				return fmt.Errorf("seed workspace spend: %w", err)
			}
		}
		w = workspaceOf(dw)
		return nil
	})
	return w, err
}

// DeleteWorkspace implements workspaces.Store: everything in the workspace
// goes with it, and its keys stop working on every replica.
func (s *Store) DeleteWorkspace(ctx context.Context, id string) error {
	return s.change(ctx, notify.Workspace, id, func(q *db.Queries) error {
		n, err := q.WorkspaceDelete(ctx, id)
		if err != nil {
			return fmt.Errorf("delete workspace: %w", err)
		}
		if n == 0 {
			return errNotFound
		}
		return nil
	})
}

// PolicyWorkspace implements policy.Source.
func (s *Store) PolicyWorkspace(ctx context.Context, id string) (policy.Workspace, error) {
	w, err := s.Workspace(ctx, id)
	if err != nil {
		return policy.Workspace{}, err
	}
	return policy.Workspace{ID: w.ID, Name: w.Name, Limit: w.Limit, Reset: w.Reset, DefaultGuardrailID: w.DefaultGuardrailID,
		RequireZDR: w.RequireZDR}, nil
}
