package server

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/keys"
)

func apiKeyOf(k keys.Key) api.ApiKey {
	out := api.ApiKey{
		Id: k.ID, WorkspaceId: k.WorkspaceID, MemberId: k.MemberID, Name: k.Name, Label: k.Label,
		IncludeByokInLimit: k.IncludeBYOKInLimit, RequireZdr: k.RequireZDR, ExpiresAt: k.ExpiresAt,
		Disabled: k.Disabled, CreatedAt: k.CreatedAt, UpdatedAt: k.UpdatedAt, GuardrailId: opt(k.GuardrailID),
	}
	if k.Limit.Valid {
		out.Limit = ptrTo(money(k.Limit.Decimal))
	}
	if k.LimitReset != "" {
		out.LimitReset = ptrTo(api.LimitReset(k.LimitReset))
	}
	return out
}

func keyWithSecret(k keys.Key, plaintext string) api.ApiKeyWithSecret {
	a := apiKeyOf(k)
	return api.ApiKeyWithSecret{
		Id: a.Id, WorkspaceId: a.WorkspaceId, MemberId: a.MemberId, Name: a.Name, Label: a.Label,
		Limit: a.Limit, LimitReset: a.LimitReset, IncludeByokInLimit: a.IncludeByokInLimit,
		RequireZdr: a.RequireZdr, ExpiresAt: a.ExpiresAt, Disabled: a.Disabled,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt, GuardrailId: a.GuardrailId, Key: plaintext,
	}
}

// keyChange converts a key body (create's fields but member_id are
// update's); the raw body tells a null field (clear it) from an absent one.
func keyChange(ctx context.Context, b api.ApiKeyUpdate) (keys.Change, error) {
	c := keys.Change{Name: b.Name, Disabled: b.Disabled, IncludeBYOKInLimit: b.IncludeByokInLimit, RequireZDR: b.RequireZdr,
		SetLimit: present(ctx, "limit"), SetLimitReset: present(ctx, "limit_reset"),
		SetExpiresAt: present(ctx, "expires_at"), ExpiresAt: b.ExpiresAt}
	if b.LimitReset != nil {
		c.LimitReset = string(*b.LimitReset)
	}
	var err error
	c.Limit, err = amountOf("limit", b.Limit)
	return c, err
}

// ListKeys implements api.StrictServerInterface.
func (s *Server) ListKeys(ctx context.Context, req api.ListKeysRequestObject) (api.ListKeysResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	ks, err := s.keys.List(ctx, caller)
	if err != nil {
		return nil, err
	}
	out := api.ListKeys200JSONResponse{Data: make([]api.ApiKey, len(ks))}
	for i, x := range ks {
		out.Data[i] = apiKeyOf(x)
	}
	return out, nil
}

// GetKey implements api.StrictServerInterface.
func (s *Server) GetKey(ctx context.Context, req api.GetKeyRequestObject) (api.GetKeyResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	k, err := s.keys.Get(ctx, caller, req.KeyId)
	if err != nil {
		return nil, err
	}
	return api.GetKey200JSONResponse{Data: apiKeyOf(k)}, nil
}

// CreateKey implements api.StrictServerInterface.
func (s *Server) CreateKey(ctx context.Context, req api.CreateKeyRequestObject) (api.CreateKeyResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	b := req.Body
	c, err := keyChange(ctx, api.ApiKeyUpdate{Name: &b.Name, Disabled: b.Disabled, IncludeByokInLimit: b.IncludeByokInLimit,
		RequireZdr: b.RequireZdr, Limit: b.Limit, LimitReset: b.LimitReset, ExpiresAt: b.ExpiresAt})
	if err != nil {
		return nil, err
	}
	k, plaintext, err := s.keys.Create(ctx, caller, deref(b.MemberId), c)
	if err != nil {
		return nil, err
	}
	return api.CreateKey201JSONResponse{Data: keyWithSecret(k, plaintext)}, nil
}

// UpdateKey implements api.StrictServerInterface (PATCH: absent keeps, null clears).
func (s *Server) UpdateKey(ctx context.Context, req api.UpdateKeyRequestObject) (api.UpdateKeyResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	c, err := keyChange(ctx, *req.Body)
	if err != nil {
		return nil, err
	}
	k, err := s.keys.Update(ctx, caller, req.KeyId, c)
	if err != nil {
		return nil, err
	}
	return api.UpdateKey200JSONResponse{Data: apiKeyOf(k)}, nil
}

// DeleteKey implements api.StrictServerInterface (revoke).
func (s *Server) DeleteKey(ctx context.Context, req api.DeleteKeyRequestObject) (api.DeleteKeyResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	if err := s.keys.Delete(ctx, caller, req.KeyId); err != nil {
		return nil, err
	}
	return api.DeleteKey204Response{}, nil
}

// amountOf parses the exact USD amount of field; nil means none.
func amountOf(field string, n *json.Number) (decimal.NullDecimal, error) {
	if n == nil {
		return decimal.NullDecimal{}, nil
	}
	d, err := decimal.NewFromString(n.String())
	if err != nil || d.IsNegative() {
		return decimal.NullDecimal{}, apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"%s must be a non-negative amount in USD, e.g. 25 or 0.5.", field).With("field", "/"+field)
	}
	return decimal.NullDecimal{Decimal: d, Valid: true}, nil
}
