package server

import (
	"context"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/store"
)

func workspaceOf(w store.Workspace) api.Workspace {
	out := api.Workspace{Id: w.ID, Name: w.Name, UseOperatorCredentials: w.UseOperatorCredentials, CreatedAt: w.CreatedAt,
		DefaultGuardrailId: opt(w.DefaultGuardrailID), Usage: money0}
	if w.Reset != "" {
		out.ResetInterval = ptrTo(api.ResetInterval(w.Reset))
	}
	if w.Limit.Valid {
		out.LimitUsd = ptrTo(money(w.Limit.Decimal))
	}
	return out
}

// workspaceWithSpend is workspaceOf with the budget's current period.
func (s *Server) workspaceWithSpend(ctx context.Context, w store.Workspace) (api.Workspace, error) {
	out := workspaceOf(w)
	if !w.Limit.Valid {
		return out, nil
	}
	st, err := s.budgets.Status(ctx, s.store, budget.Scope{Kind: "workspace", ID: w.ID, Limit: w.Limit.Decimal, Reset: w.Reset})
	if err != nil {
		return api.Workspace{}, err
	}
	out.Usage, out.LimitRemaining, out.ResetsAt = money(st.Usage), ptrTo(money(st.Remaining)), st.ResetsAt
	return out, nil
}

// ListWorkspaces implements api.StrictServerInterface: a key sees its own.
func (s *Server) ListWorkspaces(ctx context.Context, _ api.ListWorkspacesRequestObject) (api.ListWorkspacesResponseObject, error) {
	k, err := inWorkspace(ctx, callerKey(ctx).WorkspaceID, access.ReadWorkspace)
	if err != nil {
		return nil, err
	}
	w, err := s.store.Workspace(ctx, k.WorkspaceID)
	if err != nil {
		return nil, storeError(err, "Workspace", k.WorkspaceID)
	}
	out, err := s.workspaceWithSpend(ctx, w)
	if err != nil {
		return nil, err
	}
	return api.ListWorkspaces200JSONResponse{Data: []api.Workspace{out}}, nil
}

// CreateWorkspace implements api.StrictServerInterface.
func (s *Server) CreateWorkspace(ctx context.Context, req api.CreateWorkspaceRequestObject) (api.CreateWorkspaceResponseObject, error) {
	caller := callerKey(ctx)
	if err := access.RequireOperator(caller.Operator, caller.Role, access.CreateWorkspace); err != nil {
		return nil, err
	}
	b := req.Body
	plaintext := keys.Generate()
	w, m, k, err := s.store.CreateWorkspace(ctx, store.NewWorkspace{
		Name: b.Name, UseOperatorCredentials: b.UseOperatorCredentials != nil && *b.UseOperatorCredentials,
		OwnerName: b.Owner.Name, OwnerEmail: deref(b.Owner.Email), KeyPlaintext: plaintext,
	}, s.now())
	if err != nil {
		return nil, err
	}
	out := api.CreateWorkspace201JSONResponse{}
	out.Data.Workspace, out.Data.Owner, out.Data.Key = workspaceOf(w), memberOf(m), keyWithSecret(k, plaintext)
	return out, nil
}

// GetWorkspace implements api.StrictServerInterface.
func (s *Server) GetWorkspace(ctx context.Context, req api.GetWorkspaceRequestObject) (api.GetWorkspaceResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.ReadWorkspace); err != nil {
		return nil, err
	}
	w, err := s.store.Workspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, storeError(err, "Workspace", req.WorkspaceId)
	}
	out, err := s.workspaceWithSpend(ctx, w)
	if err != nil {
		return nil, err
	}
	return api.GetWorkspace200JSONResponse{Data: out}, nil
}

// UpdateWorkspace implements api.StrictServerInterface.
func (s *Server) UpdateWorkspace(ctx context.Context, req api.UpdateWorkspaceRequestObject) (api.UpdateWorkspaceResponseObject, error) {
	caller := callerKey(ctx)
	if req.Body.UseOperatorCredentials != nil {
		// The operator's provider keys are the operator's to lend, on any
		// workspace; nobody else may switch them on or off.
		if err := access.RequireOperator(caller.Operator, caller.Role, access.SetOperatorCreds); err != nil {
			return nil, err
		}
	}
	b := req.Body
	policyChange := b.DefaultGuardrailId != nil || present(ctx, "default_guardrail_id") || present(ctx, "limit_usd") || b.ResetInterval != nil
	if !caller.Operator || b.Name != nil || policyChange {
		if _, err := inWorkspace(ctx, req.WorkspaceId, access.UpdateWorkspace); err != nil {
			return nil, err
		}
	}
	c := store.WorkspaceChange{Name: b.Name, UseOperatorCredentials: b.UseOperatorCredentials}
	if b.DefaultGuardrailId != nil || isNull(ctx, "default_guardrail_id") {
		id := deref(b.DefaultGuardrailId)
		if err := s.guardrails.CheckAssignable(ctx, callerKey(ctx), "/default_guardrail_id", id); err != nil {
			return nil, err
		}
		c.DefaultGuardrailID = &id
	}
	if present(ctx, "limit_usd") {
		if err := access.Require(caller.Role, access.ManageGuardrails); err != nil {
			return nil, err
		}
		lim, err := amountOf("limit_usd", b.LimitUsd)
		if err != nil {
			return nil, err
		}
		c.SetLimit, c.Limit = true, lim
		if b.ResetInterval != nil && lim.Valid {
			c.Reset = string(*b.ResetInterval)
		}
	} else if b.ResetInterval != nil {
		return nil, invalid("/reset_interval", "reset_interval is set together with limit_usd (the workspace budget it is the period of).")
	}
	w, err := s.store.UpdateWorkspace(ctx, req.WorkspaceId, c)
	if err != nil {
		return nil, storeError(err, "Workspace", req.WorkspaceId)
	}
	out, err := s.workspaceWithSpend(ctx, w)
	if err != nil {
		return nil, err
	}
	return api.UpdateWorkspace200JSONResponse{Data: out}, nil
}

// DeleteWorkspace implements api.StrictServerInterface.
func (s *Server) DeleteWorkspace(ctx context.Context, req api.DeleteWorkspaceRequestObject) (api.DeleteWorkspaceResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.DeleteWorkspace); err != nil {
		return nil, err
	}
	if err := s.store.DeleteWorkspace(ctx, req.WorkspaceId); err != nil {
		return nil, storeError(err, "Workspace", req.WorkspaceId)
	}
	return api.DeleteWorkspace204Response{}, nil
}
