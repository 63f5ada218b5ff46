package server

import (
	"context"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/api"

	"github.com/perpetuo/perpetuo/internal/workspaces"
)

func workspaceOf(w workspaces.Workspace) api.Workspace {
	out := api.Workspace{Id: w.ID, Slug: w.ID, Name: w.Name, UseOperatorCredentials: w.UseOperatorCredentials, RequireZdr: w.RequireZDR, CreatedAt: w.CreatedAt,
		DefaultGuardrailId: opt(w.DefaultGuardrailID), Usage: money(decimal.Zero)}
	if w.Reset != "" {
		out.ResetInterval = ptrTo(api.ResetInterval(w.Reset))
	}
	if w.Limit.Valid {
		out.LimitUsd = ptrTo(money(w.Limit.Decimal))
	}
	return out
}

// workspaceWithSpend is workspaceOf with the budget's current period.
func (s *Server) workspaceWithSpend(ctx context.Context, w workspaces.Workspace) (api.Workspace, error) {
	out := workspaceOf(w)
	v, err := s.budgetOf(ctx, "workspace", w.ID, w.Limit, w.Reset)
	if err != nil {
		return api.Workspace{}, err
	}
	out.Usage, out.LimitRemaining, out.ResetsAt = v.usage, v.remaining, v.resetsAt
	return out, nil
}

// ListWorkspaces implements api.StrictServerInterface: a key sees its own.
func (s *Server) ListWorkspaces(ctx context.Context, _ api.ListWorkspacesRequestObject) (api.ListWorkspacesResponseObject, error) {
	ws, err := s.workspaces.List(ctx, callerKey(ctx))
	if err != nil {
		return nil, err
	}
	out := api.ListWorkspaces200JSONResponse{Data: make([]api.Workspace, len(ws)), TotalCount: len(ws)}
	for i, w := range ws {
		if out.Data[i], err = s.workspaceWithSpend(ctx, w); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CreateWorkspace implements api.StrictServerInterface.
func (s *Server) CreateWorkspace(ctx context.Context, req api.CreateWorkspaceRequestObject) (api.CreateWorkspaceResponseObject, error) {
	b := req.Body
	c, err := s.workspaces.Create(ctx, callerKey(ctx), workspaces.NewWorkspace{
		Name: b.Name, UseOperatorCredentials: deref(b.UseOperatorCredentials),
		OwnerName: b.Owner.Name, OwnerEmail: deref(b.Owner.Email),
	})
	if err != nil {
		return nil, err
	}
	out := api.CreateWorkspace201JSONResponse{}
	out.Data.Workspace, out.Data.Owner, out.Data.Key = workspaceOf(c.Workspace), memberOf(c.Owner), keyWithSecret(c.Key, c.Plaintext)
	return out, nil
}

// GetWorkspace implements api.StrictServerInterface.
func (s *Server) GetWorkspace(ctx context.Context, req api.GetWorkspaceRequestObject) (api.GetWorkspaceResponseObject, error) {
	w, err := s.workspaces.Get(ctx, callerKey(ctx), req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	out, err := s.workspaceWithSpend(ctx, w)
	if err != nil {
		return nil, err
	}
	return api.GetWorkspace200JSONResponse{Data: out}, nil
}

// UpdateWorkspace implements api.StrictServerInterface. The path is not
// checked here: the operator may switch the operator's provider keys on any
// workspace, which the service decides.
func (s *Server) UpdateWorkspace(ctx context.Context, req api.UpdateWorkspaceRequestObject) (api.UpdateWorkspaceResponseObject, error) {
	b := req.Body
	c := workspaces.WorkspaceChange{Name: b.Name, UseOperatorCredentials: b.UseOperatorCredentials, RequireZDR: b.RequireZdr,
		SetLimit: present(ctx, "limit_usd")}
	if present(ctx, "default_guardrail_id") {
		c.DefaultGuardrailID = ptrTo(deref(b.DefaultGuardrailId))
	}
	if b.ResetInterval != nil {
		c.Reset = string(*b.ResetInterval)
	}
	var err error
	if c.Limit, err = amountOf("limit_usd", b.LimitUsd); err != nil {
		return nil, err
	}
	w, err := s.workspaces.Update(ctx, callerKey(ctx), req.WorkspaceId, c)
	if err != nil {
		return nil, err
	}
	out, err := s.workspaceWithSpend(ctx, w)
	if err != nil {
		return nil, err
	}
	return api.UpdateWorkspace200JSONResponse{Data: out}, nil
}

// DeleteWorkspace implements api.StrictServerInterface.
func (s *Server) DeleteWorkspace(ctx context.Context, req api.DeleteWorkspaceRequestObject) (api.DeleteWorkspaceResponseObject, error) {
	if err := s.workspaces.Delete(ctx, callerKey(ctx), req.WorkspaceId); err != nil {
		return nil, err
	}
	return api.DeleteWorkspace204Response{}, nil
}
