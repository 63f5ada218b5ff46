package server

import (
	"context"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/guardrails"
)

// guardrailOf renders a guardrail with its current period's spend.
func (s *Server) guardrailOf(ctx context.Context, g guardrails.Governing) (api.Guardrail, error) {
	out := api.Guardrail{
		Id: g.ID, WorkspaceId: g.WorkspaceID, Name: g.Name, Description: opt(g.Description),
		AllowedModels: nonNil(g.AllowedModels), AllowedProviders: nonNil(g.AllowedProviders),
		IgnoredModels: nonNil(g.IgnoredModels), IgnoredProviders: nonNil(g.IgnoredProviders),
		EnforceZdr: g.EnforceZDR, IncludeByokInBudgets: g.IncludeBYOK, CreatedAt: g.CreatedAt, UpdatedAt: g.UpdatedAt,
		IsDefault: g.Default, MemberIds: g.MemberIDs, KeyIds: g.KeyIDs,
	}
	v, err := s.budgetOf(ctx, "guardrail", g.ID, g.Limit, g.Reset)
	if err != nil {
		return api.Guardrail{}, err
	}
	out.LimitUsd, out.ResetInterval, out.Usage, out.LimitRemaining, out.ResetsAt = v.limit, v.reset, v.usage, v.remaining, v.resetsAt
	return out, nil
}

// budgetView is a budget's current period as responses show it; without a
// budget, usage is 0 and the rest null.
type budgetView struct {
	limit, remaining *api.Money
	usage            api.Money
	reset            *api.ResetInterval
	resetsAt         *time.Time
}

// budgetOf reads the current period of the budget kind:id (none unless
// limit is valid) from the ledger and this replica's leases.
func (s *Server) budgetOf(ctx context.Context, kind, id string, limit decimal.NullDecimal, reset string) (budgetView, error) {
	v := budgetView{usage: money(decimal.Zero)}
	if reset != "" {
		v.reset = ptrTo(api.ResetInterval(reset))
	}
	if !limit.Valid {
		return v, nil
	}
	st, err := s.budgets.Status(ctx, s.store, budget.Scope{Kind: kind, ID: id, Limit: limit.Decimal, Reset: reset})
	if err != nil {
		return budgetView{}, err
	}
	v.limit, v.usage, v.remaining, v.resetsAt = ptrTo(money(limit.Decimal)), money(st.Usage), ptrTo(money(st.Remaining)), st.ResetsAt
	return v, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// guardrailInput converts the body; the service checks it.
func guardrailInput(b *api.GuardrailInput) (guardrails.Input, error) {
	in := guardrails.Input{Name: b.Name, Description: deref(b.Description),
		AllowedModels: deref(b.AllowedModels), AllowedProviders: deref(b.AllowedProviders),
		IgnoredModels: deref(b.IgnoredModels), IgnoredProviders: deref(b.IgnoredProviders),
		EnforceZDR: deref(b.EnforceZdr), IncludeBYOK: deref(b.IncludeByokInBudgets)}
	if b.ResetInterval != nil {
		in.Reset = string(*b.ResetInterval)
	}
	var err error
	in.Limit, err = amountOf("limit_usd", b.LimitUsd)
	return in, err
}

// ListGuardrails implements api.StrictServerInterface.
func (s *Server) ListGuardrails(ctx context.Context, req api.ListGuardrailsRequestObject) (api.ListGuardrailsResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	gs, err := s.guardrails.List(ctx, k)
	if err != nil {
		return nil, err
	}
	out := api.ListGuardrails200JSONResponse{Data: make([]api.Guardrail, len(gs))}
	for i, g := range gs {
		if out.Data[i], err = s.guardrailOf(ctx, g); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GetGuardrail implements api.StrictServerInterface.
func (s *Server) GetGuardrail(ctx context.Context, req api.GetGuardrailRequestObject) (api.GetGuardrailResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	g, err := s.guardrails.Get(ctx, k, req.GuardrailId)
	if err != nil {
		return nil, err
	}
	out, err := s.guardrailOf(ctx, g)
	if err != nil {
		return nil, err
	}
	return api.GetGuardrail200JSONResponse{Data: out}, nil
}

// CreateGuardrail implements api.StrictServerInterface.
func (s *Server) CreateGuardrail(ctx context.Context, req api.CreateGuardrailRequestObject) (api.CreateGuardrailResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	in, err := guardrailInput(req.Body)
	if err != nil {
		return nil, err
	}
	g, err := s.guardrails.Create(ctx, k, in)
	if err != nil {
		return nil, err
	}
	out, err := s.guardrailOf(ctx, g)
	if err != nil {
		return nil, err
	}
	return api.CreateGuardrail201JSONResponse{Data: out}, nil
}

// UpdateGuardrail implements api.StrictServerInterface.
func (s *Server) UpdateGuardrail(ctx context.Context, req api.UpdateGuardrailRequestObject) (api.UpdateGuardrailResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	in, err := guardrailInput(req.Body)
	if err != nil {
		return nil, err
	}
	g, err := s.guardrails.Update(ctx, k, req.GuardrailId, in)
	if err != nil {
		return nil, err
	}
	out, err := s.guardrailOf(ctx, g)
	if err != nil {
		return nil, err
	}
	return api.UpdateGuardrail200JSONResponse{Data: out}, nil
}

// DeleteGuardrail implements api.StrictServerInterface.
func (s *Server) DeleteGuardrail(ctx context.Context, req api.DeleteGuardrailRequestObject) (api.DeleteGuardrailResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	if err := s.guardrails.Delete(ctx, k, req.GuardrailId, deref(req.Params.Force)); err != nil {
		return nil, err
	}
	return api.DeleteGuardrail204Response{}, nil
}

// AssignMemberGuardrail implements api.StrictServerInterface.
func (s *Server) AssignMemberGuardrail(ctx context.Context, req api.AssignMemberGuardrailRequestObject) (api.AssignMemberGuardrailResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	if err := s.guardrails.AssignMember(ctx, k, req.MemberId, req.Body.GuardrailId); err != nil {
		return nil, err
	}
	m, err := s.workspaces.Member(ctx, k, req.MemberId)
	if err != nil {
		return nil, err
	}
	return api.AssignMemberGuardrail200JSONResponse{Data: memberOf(m)}, nil
}

// UnassignMemberGuardrail implements api.StrictServerInterface.
func (s *Server) UnassignMemberGuardrail(ctx context.Context, req api.UnassignMemberGuardrailRequestObject) (api.UnassignMemberGuardrailResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	if err := s.guardrails.AssignMember(ctx, k, req.MemberId, ""); err != nil {
		return nil, err
	}
	return api.UnassignMemberGuardrail204Response{}, nil
}

// AssignKeyGuardrail implements api.StrictServerInterface.
func (s *Server) AssignKeyGuardrail(ctx context.Context, req api.AssignKeyGuardrailRequestObject) (api.AssignKeyGuardrailResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	if err := s.guardrails.AssignKey(ctx, k, req.KeyId, req.Body.GuardrailId); err != nil {
		return nil, err
	}
	key, err := s.keys.Get(ctx, k, req.KeyId)
	if err != nil {
		return nil, err
	}
	return api.AssignKeyGuardrail200JSONResponse{Data: apiKeyOf(key)}, nil
}

// UnassignKeyGuardrail implements api.StrictServerInterface.
func (s *Server) UnassignKeyGuardrail(ctx context.Context, req api.UnassignKeyGuardrailRequestObject) (api.UnassignKeyGuardrailResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	if err := s.guardrails.AssignKey(ctx, k, req.KeyId, ""); err != nil {
		return nil, err
	}
	return api.UnassignKeyGuardrail204Response{}, nil
}
