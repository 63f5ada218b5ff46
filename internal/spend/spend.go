// Package spend answers the spend views: what a key, a member, a
// guardrail or the workspace spent per period. Keys and members read the
// rollups maintained as generation records are written; guardrails and the
// workspace read their budget's ledger. Who may read which is decided here.
package spend

import (
	"context"
	"net/http"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

// Period is one period's spend.
type Period struct {
	Start time.Time
	Usage decimal.Decimal
	// BYOK is the spend served with the workspace's own provider keys
	// (keys and members; budgets count what their rules say in Usage).
	BYOK decimal.NullDecimal
}

// History is a scope's spend, newest period first.
type History struct {
	Scope, ID, Period string
	Limit             decimal.NullDecimal // budgets only
	Periods           []Period
}

// Store reads spend per period.
type Store interface {
	KeyUsageHistory(ctx context.Context, keyID, period string, n int) ([]Period, error)
	MemberUsageHistory(ctx context.Context, workspaceID, memberID, period string, n int) ([]Period, error)
	BudgetHistory(ctx context.Context, kind, id string, n int) ([]Period, error)
}

// Service answers spend views with the other services' visibility rules.
type Service struct {
	store      Store
	keys       *keys.Service
	workspaces *workspaces.Service
	guardrails *guardrails.Service
}

// NewService returns a Service.
func NewService(st Store, k *keys.Service, w *workspaces.Service, g *guardrails.Service) *Service {
	return &Service{store: st, keys: k, workspaces: w, guardrails: g}
}

// Scopes.
const (
	Key       = "key"
	Member    = "member"
	Guardrail = "guardrail"
	Workspace = "workspace"
)

// History returns up to n periods of a scope's spend. For keys and
// members, period is the kind ("" is monthly); guardrails and the
// workspace answer their budget's periods. Admins, owners and viewers read
// every scope; members their own member and keys, the guardrails governing
// them and the workspace.
func (s *Service) History(ctx context.Context, caller keys.Key, scope, id, period string, n int) (History, error) {
	if n <= 0 {
		n = 12
	}
	if period == "" {
		period = "monthly"
	}
	h := History{Scope: scope, ID: id, Period: period}
	var err error
	switch scope {
	case Key:
		if err := need(id); err != nil {
			return History{}, err
		}
		if _, err := s.keys.Get(ctx, caller, id); err != nil {
			return History{}, err
		}
		h.Periods, err = s.store.KeyUsageHistory(ctx, id, period, n)
	case Member:
		if err := need(id); err != nil {
			return History{}, err
		}
		if id != caller.MemberID {
			if err := access.Require(caller.Role, access.ReadAllKeys); err != nil {
				return History{}, err
			}
		}
		if _, err := s.workspaces.Member(ctx, caller, id); err != nil {
			return History{}, err
		}
		h.Periods, err = s.store.MemberUsageHistory(ctx, caller.WorkspaceID, id, period, n)
	case Guardrail:
		if err := need(id); err != nil {
			return History{}, err
		}
		g, err := s.guardrails.Get(ctx, caller, id)
		if err != nil {
			return History{}, err
		}
		h.Period, h.Limit = periodOf(g.Reset), g.Limit
		h.Periods, err = s.store.BudgetHistory(ctx, Guardrail, id, n)
		if err != nil {
			return History{}, err
		}
	case Workspace:
		w, err := s.workspaces.Get(ctx, caller, caller.WorkspaceID)
		if err != nil {
			return History{}, err
		}
		h.ID, h.Period, h.Limit = w.ID, periodOf(w.Reset), w.Limit
		h.Periods, err = s.store.BudgetHistory(ctx, Workspace, w.ID, n)
		if err != nil {
			return History{}, err
		}
	default:
		return History{}, invalid("scope", "scope must be key, member, guardrail or workspace.")
	}
	return h, err
}

func periodOf(reset string) string {
	if reset == "" {
		return "lifetime"
	}
	return reset
}

func need(id string) error {
	if id == "" {
		return invalid("id", "id is required for this scope: the key, member or guardrail id.")
	}
	return nil
}

func invalid(field, msg string) error {
	return apierr.New(http.StatusBadRequest, apierr.InvalidRequest, "%s", msg).With("field", field)
}
