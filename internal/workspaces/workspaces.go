// Package workspaces is the workspace and member aggregates and their
// management rules: who may read, change or delete a workspace, what only
// the deployment's operator may decide (creating workspaces, lending the
// operator's provider keys), and who may manage whom among members (owners
// only by owners). A key reaches only its own workspace: any other is, to
// it, not found.
package workspaces

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/keys"
)

// Workspace is a tenant: members, keys and credentials belong to one.
type Workspace struct {
	ID                     string
	Name                   string
	UseOperatorCredentials bool
	// RequireZDR restricts every request to zero-data-retention endpoints.
	RequireZDR bool
	// DefaultGuardrailID governs members without a guardrail of their own.
	DefaultGuardrailID string
	// Limit is the workspace's own budget per Reset period.
	Limit     decimal.NullDecimal
	Reset     string
	CreatedAt time.Time
}

// NewWorkspace describes a workspace to create with its first owner.
type NewWorkspace struct {
	Name                   string
	UseOperatorCredentials bool
	OwnerName, OwnerEmail  string
	KeyPlaintext           string
	KeyOperator            bool // the owner key is an operator key (CLI only)
}

// WorkspaceChange is what an update changes: nil fields are kept.
type WorkspaceChange struct {
	Name                   *string
	UseOperatorCredentials *bool
	RequireZDR             *bool
	DefaultGuardrailID     *string // "" clears it
	// SetLimit replaces the budget with Limit and Reset; Reset without
	// SetLimit is refused.
	SetLimit bool
	Limit    decimal.NullDecimal
	Reset    string
}

// Created is a new workspace with its owner and the owner's key, whose
// plaintext is shown this once.
type Created struct {
	Workspace Workspace
	Owner     Member
	Key       keys.Key
	Plaintext string
}

// Errors a Store returns.
var (
	// ErrNotFound: no such workspace, or no such member in it.
	ErrNotFound = errors.New("not found")
	// ErrLastOwner: the change would leave a workspace without an owner.
	// The Store enforces it under a lock, so concurrent demotions cannot
	// both pass.
	ErrLastOwner = errors.New("a workspace must keep at least one owner")
)

// Store persists workspaces and members. Every change publishes the
// invalidation that makes every replica's caches drop what it changed.
type Store interface {
	Workspace(ctx context.Context, id string) (Workspace, error)
	// CreateWorkspace creates the workspace, its owner and the owner's key
	// in one transaction.
	CreateWorkspace(ctx context.Context, n NewWorkspace, now time.Time) (Workspace, Member, keys.Key, error)
	UpdateWorkspace(ctx context.Context, id string, c WorkspaceChange) (Workspace, error)
	DeleteWorkspace(ctx context.Context, id string) error
	Members(ctx context.Context, workspaceID string) ([]Member, error)
	Member(ctx context.Context, workspaceID, id string) (Member, error)
	CreateMember(ctx context.Context, workspaceID string, n NewMember, now time.Time) (Member, error)
	// UpdateMember and DeleteMember fail with ErrLastOwner rather than
	// leave the workspace without an owner.
	UpdateMember(ctx context.Context, workspaceID, id string, c MemberChange) (Member, error)
	DeleteMember(ctx context.Context, workspaceID, id string) error
}

// Guardrails checks the caller may make guardrail id the workspace's
// default, naming field in its errors (guardrails.Service does).
type Guardrails interface {
	CheckAssignable(ctx context.Context, caller keys.Key, field, id string) error
}

// Service applies the management rules over a Store.
type Service struct {
	store      Store
	guardrails Guardrails
	now        func() time.Time
}

// NewService returns a Service; now may be nil.
func NewService(st Store, gr Guardrails, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, guardrails: gr, now: now}
}

// List returns the workspaces the caller sees: its own.
func (s *Service) List(ctx context.Context, caller keys.Key) ([]Workspace, error) {
	w, err := s.Get(ctx, caller, caller.WorkspaceID)
	if err != nil {
		return nil, err
	}
	return []Workspace{w}, nil
}

// Get returns workspace id, which must be the caller's.
func (s *Service) Get(ctx context.Context, caller keys.Key, id string) (Workspace, error) {
	if err := own(caller, id, access.ReadWorkspace); err != nil {
		return Workspace{}, err
	}
	w, err := s.store.Workspace(ctx, id)
	if err != nil {
		return Workspace{}, apiError(err, "Workspace", id)
	}
	return w, nil
}

// Create creates a workspace with its first owner and the owner's key
// (operator only). The key is never an operator key: that is granted by
// bootstrap or the CLI, never through the API.
func (s *Service) Create(ctx context.Context, caller keys.Key, n NewWorkspace) (Created, error) {
	if err := access.RequireOperator(caller.Operator, caller.Role, access.CreateWorkspace); err != nil {
		return Created{}, err
	}
	n.KeyPlaintext, n.KeyOperator = keys.Generate(), false
	w, m, k, err := s.store.CreateWorkspace(ctx, n, s.now())
	if err != nil {
		return Created{}, err
	}
	return Created{Workspace: w, Owner: m, Key: k, Plaintext: n.KeyPlaintext}, nil
}

// Update applies c to workspace id. Switching the operator's provider keys
// on or off is the operator's alone, on any workspace; everything else
// needs a role that updates the caller's own workspace, and the budget and
// default guardrail one that manages guardrails.
func (s *Service) Update(ctx context.Context, caller keys.Key, id string, c WorkspaceChange) (Workspace, error) {
	if c.UseOperatorCredentials != nil {
		if err := access.RequireOperator(caller.Operator, caller.Role, access.SetOperatorCreds); err != nil {
			return Workspace{}, err
		}
	}
	policyChange := c.DefaultGuardrailID != nil || c.SetLimit || c.Reset != "" || c.RequireZDR != nil
	if !caller.Operator || c.Name != nil || policyChange {
		if err := own(caller, id, access.UpdateWorkspace); err != nil {
			return Workspace{}, err
		}
	}
	if c.DefaultGuardrailID != nil {
		if err := s.guardrails.CheckAssignable(ctx, caller, "/default_guardrail_id", *c.DefaultGuardrailID); err != nil {
			return Workspace{}, err
		}
	}
	if c.RequireZDR != nil {
		if err := access.Require(caller.Role, access.ManageGuardrails); err != nil {
			return Workspace{}, err
		}
	}
	if c.SetLimit {
		if err := access.Require(caller.Role, access.ManageGuardrails); err != nil {
			return Workspace{}, err
		}
		if !c.Limit.Valid {
			c.Reset = "" // no budget, no period
		}
	} else if c.Reset != "" {
		return Workspace{}, apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"reset_interval is set together with limit_usd (the workspace budget it is the period of).").With("field", "/reset_interval")
	}
	w, err := s.store.UpdateWorkspace(ctx, id, c)
	if err != nil {
		return Workspace{}, apiError(err, "Workspace", id)
	}
	return w, nil
}

// Delete deletes workspace id, the caller's own, and everything in it
// (owners only).
func (s *Service) Delete(ctx context.Context, caller keys.Key, id string) error {
	if err := own(caller, id, access.DeleteWorkspace); err != nil {
		return err
	}
	return apiError(s.store.DeleteWorkspace(ctx, id), "Workspace", id)
}

// own checks workspace id is the caller's and its role may do a. Another
// workspace is not found, exactly as one that does not exist, so a key
// never learns what other workspaces exist.
func own(caller keys.Key, id string, a access.Action) error {
	if id != caller.WorkspaceID {
		return apiError(ErrNotFound, "Workspace", id)
	}
	return access.Require(caller.Role, a)
}

// apiError maps ErrNotFound to the 404 naming what was not found, and
// ErrLastOwner to its 409; other errors pass as they are.
func apiError(err error, what, id string) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return apierr.New(http.StatusNotFound, apierr.NotFound, "%s %s not found.", what, id)
	case errors.Is(err, ErrLastOwner):
		return apierr.New(http.StatusConflict, apierr.Conflict,
			"A workspace must keep at least one owner; make another member owner first.")
	}
	return err
}
