package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/notify"
	"github.com/perpetuo/perpetuo/internal/policy"
)

// Workspace is a tenant: members, keys and credentials belong to one.
type Workspace struct {
	ID                     string
	Name                   string
	UseOperatorCredentials bool
	// DefaultGuardrailID governs members without a guardrail of their own.
	DefaultGuardrailID string
	// Limit is the workspace's own budget per Reset period.
	Limit     decimal.NullDecimal
	Reset     string
	CreatedAt time.Time
}

func workspaceOf(w db.Workspace) Workspace {
	return Workspace{ID: w.ID, Name: w.Name, UseOperatorCredentials: w.UseOperatorCredentials, CreatedAt: w.CreatedAt,
		DefaultGuardrailID: val(w.DefaultGuardrailID), Limit: w.LimitUsd, Reset: val(w.ResetInterval)}
}

// WorkspaceChange is what UpdateWorkspace changes: nil fields are kept.
type WorkspaceChange struct {
	Name                   *string
	UseOperatorCredentials *bool
	DefaultGuardrailID     *string // "" clears it
	// SetLimit replaces the budget with Limit and Reset.
	SetLimit bool
	Limit    decimal.NullDecimal
	Reset    string
}

// NewWorkspace describes a workspace to create with its first owner.
type NewWorkspace struct {
	Name                   string
	UseOperatorCredentials bool
	OwnerName, OwnerEmail  string
	KeyPlaintext           string
	KeyOperator            bool // the owner key is an operator key (CLI only)
}

// CreateWorkspace creates a workspace, its owner and the owner's key.
func (s *Store) CreateWorkspace(ctx context.Context, n NewWorkspace, now time.Time) (Workspace, Member, keys.Key, error) {
	var (
		w Workspace
		m Member
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
		return Workspace{}, Member{}, keys.Key{}, fmt.Errorf("create workspace: %w", err)
	}
	return w, m, k, nil
}

// Workspace returns one workspace.
func (s *Store) Workspace(ctx context.Context, id string) (Workspace, error) {
	w, err := s.q.WorkspaceGetByID(ctx, id)
	if isNoRows(err) {
		return Workspace{}, ErrNotFound
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("get workspace: %w", err)
	}
	return workspaceOf(w), nil
}

// UpdateWorkspace changes the fields that are set.
func (s *Store) UpdateWorkspace(ctx context.Context, id string, c WorkspaceChange) (Workspace, error) {
	var w Workspace
	err := s.change(ctx, notify.Workspace, id, func(q *db.Queries) error {
		p := db.WorkspaceUpdateParams{ID: id, Name: c.Name, UseOperatorCredentials: c.UseOperatorCredentials,
			SetLimit: c.SetLimit, LimitUsd: c.Limit, ResetInterval: ptr(c.Reset)}
		if c.DefaultGuardrailID != nil {
			p.SetDefaultGuardrail, p.DefaultGuardrailID = true, ptr(*c.DefaultGuardrailID)
		}
		dw, err := q.WorkspaceUpdate(ctx, p)
		if isNoRows(err) {
			return ErrNotFound
		}
		if isForeignKey(err) {
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

// DeleteWorkspace deletes a workspace and everything in it; its keys stop
// working on every replica.
func (s *Store) DeleteWorkspace(ctx context.Context, id string) error {
	return s.change(ctx, notify.Workspace, id, func(q *db.Queries) error {
		n, err := q.WorkspaceDelete(ctx, id)
		if err != nil {
			return fmt.Errorf("delete workspace: %w", err)
		}
		if n == 0 {
			return ErrNotFound
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
	return policy.Workspace{ID: w.ID, Name: w.Name, Limit: w.Limit, Reset: w.Reset, DefaultGuardrailID: w.DefaultGuardrailID}, nil
}
