package server

import (
	"context"
	"net/http"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/keys"
)

// OpenRouter's management routes, in OpenRouter's shape: the caller's
// workspace is implied, and the key and guardrail services are the same as
// behind the workspace-scoped routes.

// callerWorkspace is inWorkspace for routes whose workspace is the caller's
// unless a workspace_id names another (which answers 404).
func callerWorkspace(ctx context.Context, workspaceID *string) (keys.Key, error) {
	if workspaceID != nil {
		return inWorkspace(ctx, *workspaceID)
	}
	return inWorkspace(ctx, callerKey(ctx).WorkspaceID)
}

// openRouterKeyOf renders a key with its spend and what its limit leaves.
func (s *Server) openRouterKeyOf(ctx context.Context, k keys.Key) (api.OpenRouterKey, error) {
	u, err := s.keyUsage(ctx, k.ID)
	if err != nil {
		return api.OpenRouterKey{}, err
	}
	v, err := s.budgetOf(ctx, "key", k.ID, k.Limit, k.LimitReset)
	if err != nil {
		return api.OpenRouterKey{}, err
	}
	out := api.OpenRouterKey{
		Hash: k.ID, Name: k.Name, Label: k.Label, Disabled: k.Disabled, IncludeByokInLimit: k.IncludeBYOKInLimit,
		Limit: v.limit, LimitRemaining: v.remaining,
		Usage: money(u.Total), UsageDaily: money(u.Daily), UsageWeekly: money(u.Weekly), UsageMonthly: money(u.Monthly),
		ByokUsage: money(u.BYOK), ByokUsageDaily: money(u.BYOKDaily), ByokUsageWeekly: money(u.BYOKWeekly),
		ByokUsageMonthly: money(u.BYOKMonthly), CreatedAt: k.CreatedAt, UpdatedAt: &k.UpdatedAt, ExpiresAt: k.ExpiresAt,
		CreatorUserId: opt(k.MemberID), WorkspaceId: k.WorkspaceID, MemberId: k.MemberID,
		GuardrailId: opt(k.GuardrailID), RequireZdr: k.RequireZDR,
	}
	if k.LimitReset != "" {
		out.LimitReset = ptrTo(api.LimitReset(k.LimitReset))
	}
	return out, nil
}

// ListOpenRouterKeys implements api.StrictServerInterface.
func (s *Server) ListOpenRouterKeys(ctx context.Context, req api.ListOpenRouterKeysRequestObject) (api.ListOpenRouterKeysResponseObject, error) {
	caller, err := callerWorkspace(ctx, req.Params.WorkspaceId)
	if err != nil {
		return nil, err
	}
	ks, err := s.keys.List(ctx, caller)
	if err != nil {
		return nil, err
	}
	out := api.ListOpenRouterKeys200JSONResponse{Data: []api.OpenRouterKey{}}
	skip := deref(req.Params.Offset)
	for _, k := range ks {
		if k.Disabled && !deref(req.Params.IncludeDisabled) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		ok, err := s.openRouterKeyOf(ctx, k)
		if err != nil {
			return nil, err
		}
		out.Data = append(out.Data, ok)
	}
	return out, nil
}

// GetOpenRouterKey implements api.StrictServerInterface.
func (s *Server) GetOpenRouterKey(ctx context.Context, req api.GetOpenRouterKeyRequestObject) (api.GetOpenRouterKeyResponseObject, error) {
	caller, err := callerWorkspace(ctx, nil)
	if err != nil {
		return nil, err
	}
	k, err := s.keys.Get(ctx, caller, req.Hash)
	if err != nil {
		return nil, err
	}
	out, err := s.openRouterKeyOf(ctx, k)
	if err != nil {
		return nil, err
	}
	return api.GetOpenRouterKey200JSONResponse{Data: out}, nil
}

// CreateOpenRouterKey implements api.StrictServerInterface.
func (s *Server) CreateOpenRouterKey(ctx context.Context, req api.CreateOpenRouterKeyRequestObject) (api.CreateOpenRouterKeyResponseObject, error) {
	b := req.Body
	caller, err := callerWorkspace(ctx, b.WorkspaceId)
	if err != nil {
		return nil, err
	}
	c, err := keyChange(ctx, api.ApiKeyUpdate{Name: &b.Name, IncludeByokInLimit: b.IncludeByokInLimit,
		Limit: b.Limit, LimitReset: b.LimitReset, ExpiresAt: b.ExpiresAt})
	if err != nil {
		return nil, err
	}
	k, plaintext, err := s.keys.Create(ctx, caller, deref(b.CreatorUserId), c)
	if err != nil {
		return nil, err
	}
	out, err := s.openRouterKeyOf(ctx, k)
	if err != nil {
		return nil, err
	}
	return api.CreateOpenRouterKey201JSONResponse{Data: out, Key: plaintext}, nil
}

// UpdateOpenRouterKey implements api.StrictServerInterface (absent keeps,
// null clears).
func (s *Server) UpdateOpenRouterKey(ctx context.Context, req api.UpdateOpenRouterKeyRequestObject) (api.UpdateOpenRouterKeyResponseObject, error) {
	caller, err := callerWorkspace(ctx, nil)
	if err != nil {
		return nil, err
	}
	b := req.Body
	c, err := keyChange(ctx, api.ApiKeyUpdate{Name: b.Name, Disabled: b.Disabled, IncludeByokInLimit: b.IncludeByokInLimit,
		Limit: b.Limit, LimitReset: b.LimitReset})
	if err != nil {
		return nil, err
	}
	k, err := s.keys.Update(ctx, caller, req.Hash, c)
	if err != nil {
		return nil, err
	}
	out, err := s.openRouterKeyOf(ctx, k)
	if err != nil {
		return nil, err
	}
	return api.UpdateOpenRouterKey200JSONResponse{Data: out}, nil
}

// DeleteOpenRouterKey implements api.StrictServerInterface (revoke).
func (s *Server) DeleteOpenRouterKey(ctx context.Context, req api.DeleteOpenRouterKeyRequestObject) (api.DeleteOpenRouterKeyResponseObject, error) {
	caller, err := callerWorkspace(ctx, nil)
	if err != nil {
		return nil, err
	}
	if err := s.keys.Delete(ctx, caller, req.Hash); err != nil {
		return nil, err
	}
	return api.DeleteOpenRouterKey200JSONResponse{Deleted: true}, nil
}

// ListOpenRouterGuardrails implements api.StrictServerInterface.
func (s *Server) ListOpenRouterGuardrails(ctx context.Context, req api.ListOpenRouterGuardrailsRequestObject) (api.ListOpenRouterGuardrailsResponseObject, error) {
	k, err := callerWorkspace(ctx, req.Params.WorkspaceId)
	if err != nil {
		return nil, err
	}
	gs, err := s.guardrails.List(ctx, k)
	if err != nil {
		return nil, err
	}
	out := api.ListOpenRouterGuardrails200JSONResponse{Data: []api.Guardrail{}, TotalCount: len(gs)}
	from := min(deref(req.Params.Offset), len(gs))
	limit := 50
	if req.Params.Limit != nil {
		limit = *req.Params.Limit
	}
	for _, g := range gs[from:min(from+limit, len(gs))] {
		v, err := s.guardrailOf(ctx, g)
		if err != nil {
			return nil, err
		}
		out.Data = append(out.Data, v)
	}
	return out, nil
}

// GetOpenRouterGuardrail implements api.StrictServerInterface.
func (s *Server) GetOpenRouterGuardrail(ctx context.Context, req api.GetOpenRouterGuardrailRequestObject) (api.GetOpenRouterGuardrailResponseObject, error) {
	out, err := s.GetGuardrail(ctx, api.GetGuardrailRequestObject{WorkspaceId: callerKey(ctx).WorkspaceID, GuardrailId: req.GuardrailId})
	if err != nil {
		return nil, err
	}
	return api.GetOpenRouterGuardrail200JSONResponse(out.(api.GetGuardrail200JSONResponse)), nil
}

// CreateOpenRouterGuardrail implements api.StrictServerInterface.
func (s *Server) CreateOpenRouterGuardrail(ctx context.Context, req api.CreateOpenRouterGuardrailRequestObject) (api.CreateOpenRouterGuardrailResponseObject, error) {
	out, err := s.CreateGuardrail(ctx, api.CreateGuardrailRequestObject{WorkspaceId: callerKey(ctx).WorkspaceID, Body: req.Body})
	if err != nil {
		return nil, err
	}
	return api.CreateOpenRouterGuardrail201JSONResponse(out.(api.CreateGuardrail201JSONResponse)), nil
}

// UpdateOpenRouterGuardrail implements api.StrictServerInterface: PATCH
// over the guardrail service's replace, fields left out keeping their value.
func (s *Server) UpdateOpenRouterGuardrail(ctx context.Context, req api.UpdateOpenRouterGuardrailRequestObject) (api.UpdateOpenRouterGuardrailResponseObject, error) {
	k, err := callerWorkspace(ctx, nil)
	if err != nil {
		return nil, err
	}
	g, err := s.guardrails.Get(ctx, k, req.GuardrailId)
	if err != nil {
		return nil, err
	}
	in, b := g.Input, req.Body
	set := func(field string, dst *[]string, v *[]string) {
		if present(ctx, field) {
			*dst = deref(v)
		}
	}
	if b.Name != nil {
		in.Name = *b.Name
	}
	if present(ctx, "description") {
		in.Description = deref(b.Description)
	}
	if present(ctx, "limit_usd") {
		if in.Limit, err = amountOf("limit_usd", b.LimitUsd); err != nil {
			return nil, err
		}
	}
	if present(ctx, "reset_interval") {
		in.Reset = ""
		if b.ResetInterval != nil {
			in.Reset = string(*b.ResetInterval)
		}
	}
	set("allowed_models", &in.AllowedModels, b.AllowedModels)
	set("allowed_providers", &in.AllowedProviders, b.AllowedProviders)
	set("ignored_models", &in.IgnoredModels, b.IgnoredModels)
	set("ignored_providers", &in.IgnoredProviders, b.IgnoredProviders)
	if present(ctx, "enforce_zdr") {
		in.EnforceZDR = deref(b.EnforceZdr)
	}
	if b.IncludeByokInBudgets != nil {
		in.IncludeBYOK = *b.IncludeByokInBudgets
	}
	updated, err := s.guardrails.Update(ctx, k, req.GuardrailId, in)
	if err != nil {
		return nil, err
	}
	out, err := s.guardrailOf(ctx, updated)
	if err != nil {
		return nil, err
	}
	return api.UpdateOpenRouterGuardrail200JSONResponse{Data: out}, nil
}

// DeleteOpenRouterGuardrail implements api.StrictServerInterface.
func (s *Server) DeleteOpenRouterGuardrail(ctx context.Context, req api.DeleteOpenRouterGuardrailRequestObject) (api.DeleteOpenRouterGuardrailResponseObject, error) {
	k, err := callerWorkspace(ctx, nil)
	if err != nil {
		return nil, err
	}
	if err := s.guardrails.Delete(ctx, k, req.GuardrailId, true); err != nil {
		return nil, err
	}
	return api.DeleteOpenRouterGuardrail200JSONResponse{Deleted: true}, nil
}

// bulkAssign assigns (or, with remove, unassigns) guardrail id for ids.
func (s *Server) bulkAssign(ctx context.Context, kind, id string, ids []string, remove bool) (int, error) {
	k, err := callerWorkspace(ctx, nil)
	if err != nil {
		return 0, err
	}
	op := s.guardrails.Assign
	if remove {
		op = s.guardrails.Unassign
	}
	return op(ctx, k, kind, id, ids)
}

// AssignOpenRouterGuardrailKeys implements api.StrictServerInterface.
func (s *Server) AssignOpenRouterGuardrailKeys(ctx context.Context, req api.AssignOpenRouterGuardrailKeysRequestObject) (api.AssignOpenRouterGuardrailKeysResponseObject, error) {
	n, err := s.bulkAssign(ctx, guardrails.Keys, req.GuardrailId, req.Body.KeyHashes, false)
	if err != nil {
		return nil, err
	}
	return api.AssignOpenRouterGuardrailKeys200JSONResponse{AssignedCount: n}, nil
}

// UnassignOpenRouterGuardrailKeys implements api.StrictServerInterface.
func (s *Server) UnassignOpenRouterGuardrailKeys(ctx context.Context, req api.UnassignOpenRouterGuardrailKeysRequestObject) (api.UnassignOpenRouterGuardrailKeysResponseObject, error) {
	n, err := s.bulkAssign(ctx, guardrails.Keys, req.GuardrailId, req.Body.KeyHashes, true)
	if err != nil {
		return nil, err
	}
	return api.UnassignOpenRouterGuardrailKeys200JSONResponse{UnassignedCount: n}, nil
}

// AssignOpenRouterGuardrailMembers implements api.StrictServerInterface.
func (s *Server) AssignOpenRouterGuardrailMembers(ctx context.Context, req api.AssignOpenRouterGuardrailMembersRequestObject) (api.AssignOpenRouterGuardrailMembersResponseObject, error) {
	n, err := s.bulkAssign(ctx, guardrails.Members, req.GuardrailId, req.Body.MemberUserIds, false)
	if err != nil {
		return nil, err
	}
	return api.AssignOpenRouterGuardrailMembers200JSONResponse{AssignedCount: n}, nil
}

// UnassignOpenRouterGuardrailMembers implements api.StrictServerInterface.
func (s *Server) UnassignOpenRouterGuardrailMembers(ctx context.Context, req api.UnassignOpenRouterGuardrailMembersRequestObject) (api.UnassignOpenRouterGuardrailMembersResponseObject, error) {
	n, err := s.bulkAssign(ctx, guardrails.Members, req.GuardrailId, req.Body.MemberUserIds, true)
	if err != nil {
		return nil, err
	}
	return api.UnassignOpenRouterGuardrailMembers200JSONResponse{UnassignedCount: n}, nil
}

// notSupported is the typed answer for an OpenRouter feature Perpetuo does
// not offer: feature names it, instead says what to use.
func notSupported(feature, what, instead string) error {
	return apierr.New(http.StatusNotImplemented, apierr.NotSupported, "%s is not offered by Perpetuo. %s", what, instead).
		With("feature", feature)
}

// ListOpenRouterGuardrailKeyAssignments implements api.StrictServerInterface.
func (s *Server) ListOpenRouterGuardrailKeyAssignments(context.Context, api.ListOpenRouterGuardrailKeyAssignmentsRequestObject) (api.ListOpenRouterGuardrailKeyAssignmentsResponseObject, error) {
	return nil, notSupported("guardrail_assignment_listing", "Listing guardrail assignments as rows",
		"The guardrail's key_ids lists its keys: GET /api/v1/guardrails/{id}.")
}

// ListOpenRouterGuardrailMemberAssignments implements api.StrictServerInterface.
func (s *Server) ListOpenRouterGuardrailMemberAssignments(context.Context, api.ListOpenRouterGuardrailMemberAssignmentsRequestObject) (api.ListOpenRouterGuardrailMemberAssignmentsResponseObject, error) {
	return nil, notSupported("guardrail_assignment_listing", "Listing guardrail assignments as rows",
		"The guardrail's member_ids lists its members: GET /api/v1/guardrails/{id}.")
}

// GetOpenRouterCredits implements api.StrictServerInterface.
func (s *Server) GetOpenRouterCredits(context.Context, api.GetOpenRouterCreditsRequestObject) (api.GetOpenRouterCreditsResponseObject, error) {
	return nil, notSupported("credits", "Credits (Perpetuo runs on your own provider keys)",
		"Spend is in GET /api/v1/key and GET /v1/workspaces/{id}/spend.")
}

// CreateOpenRouterCoinbaseCharge implements api.StrictServerInterface.
func (s *Server) CreateOpenRouterCoinbaseCharge(context.Context, api.CreateOpenRouterCoinbaseChargeRequestObject) (api.CreateOpenRouterCoinbaseChargeResponseObject, error) {
	return nil, notSupported("credits", "Buying credits (Perpetuo runs on your own provider keys)",
		"Pay your providers directly; Perpetuo meters and limits the spend.")
}

// ExchangeOpenRouterAuthCode implements api.StrictServerInterface.
func (s *Server) ExchangeOpenRouterAuthCode(context.Context, api.ExchangeOpenRouterAuthCodeRequestObject) (api.ExchangeOpenRouterAuthCodeResponseObject, error) {
	return nil, notSupported("oauth", "OAuth key exchange", "Create keys with POST /api/v1/keys.")
}

// AddOpenRouterWorkspaceMembers implements api.StrictServerInterface.
func (s *Server) AddOpenRouterWorkspaceMembers(ctx context.Context, req api.AddOpenRouterWorkspaceMembersRequestObject) (api.AddOpenRouterWorkspaceMembersResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId); err != nil {
		return nil, err
	}
	return nil, notSupported("organization_users", "Adding organization users to a workspace (Perpetuo has no users outside workspaces)",
		"Add a member with POST /v1/workspaces/{id}/members.")
}

// RemoveOpenRouterWorkspaceMembers implements api.StrictServerInterface.
func (s *Server) RemoveOpenRouterWorkspaceMembers(ctx context.Context, req api.RemoveOpenRouterWorkspaceMembersRequestObject) (api.RemoveOpenRouterWorkspaceMembersResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId); err != nil {
		return nil, err
	}
	return nil, notSupported("organization_users", "Removing organization users from a workspace (Perpetuo has no users outside workspaces)",
		"Remove a member with DELETE /v1/workspaces/{id}/members/{memberId}.")
}
