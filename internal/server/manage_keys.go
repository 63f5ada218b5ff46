package server

import (
	"context"
	"encoding/json"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/access"
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

// ListKeys implements api.StrictServerInterface: every key for roles that
// read them all, the caller's own otherwise.
func (s *Server) ListKeys(ctx context.Context, req api.ListKeysRequestObject) (api.ListKeysResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId, access.ReadWorkspace)
	if err != nil {
		return nil, err
	}
	member := ""
	if !access.Can(k.Role, access.ReadAllKeys) {
		if err := access.Require(k.Role, access.ManageOwnKeys); err != nil {
			return nil, err
		}
		member = k.MemberID
	}
	ks, err := s.store.APIKeys(ctx, req.WorkspaceId, member)
	if err != nil {
		return nil, err
	}
	out := api.ListKeys200JSONResponse{Data: make([]api.ApiKey, len(ks))}
	for i, x := range ks {
		out.Data[i] = apiKeyOf(x)
	}
	return out, nil
}

// keyFor loads a key of the caller's workspace that the caller may act on:
// its own with ownAction, anyone's with allAction.
func (s *Server) keyFor(ctx context.Context, workspaceID, keyID string, ownAction, allAction access.Action) (keys.Key, keys.Key, error) {
	caller, err := inWorkspace(ctx, workspaceID, access.ReadWorkspace)
	if err != nil {
		return keys.Key{}, keys.Key{}, err
	}
	k, err := s.store.APIKey(ctx, workspaceID, keyID)
	if err != nil {
		return keys.Key{}, keys.Key{}, storeError(err, "Key", keyID)
	}
	need := allAction
	if k.MemberID == caller.MemberID && !access.Can(caller.Role, allAction) {
		need = ownAction
	}
	if err := access.Require(caller.Role, need); err != nil {
		return keys.Key{}, keys.Key{}, err
	}
	if k.MemberID != caller.MemberID && allAction == access.ManageAllKeys {
		owner, err := s.store.Member(ctx, workspaceID, k.MemberID)
		if err != nil {
			return keys.Key{}, keys.Key{}, storeError(err, "Member", k.MemberID)
		}
		if err := ownerGuard(caller, owner.Role); err != nil {
			return keys.Key{}, keys.Key{}, err
		}
	}
	return caller, k, nil
}

// GetKey implements api.StrictServerInterface.
func (s *Server) GetKey(ctx context.Context, req api.GetKeyRequestObject) (api.GetKeyResponseObject, error) {
	_, k, err := s.keyFor(ctx, req.WorkspaceId, req.KeyId, access.ManageOwnKeys, access.ReadAllKeys)
	if err != nil {
		return nil, err
	}
	return api.GetKey200JSONResponse{Data: apiKeyOf(k)}, nil
}

// CreateKey implements api.StrictServerInterface.
func (s *Server) CreateKey(ctx context.Context, req api.CreateKeyRequestObject) (api.CreateKeyResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId, access.ManageOwnKeys)
	if err != nil {
		return nil, err
	}
	b := req.Body
	member := deref(b.MemberId)
	if member == "" {
		member = caller.MemberID
	}
	if member != caller.MemberID {
		if err := access.Require(caller.Role, access.ManageAllKeys); err != nil {
			return nil, err
		}
	}
	m, err := s.store.Member(ctx, req.WorkspaceId, member)
	if err != nil {
		return nil, storeError(err, "Member", member)
	}
	if err := ownerGuard(caller, m.Role); err != nil {
		return nil, err
	}
	// The same rule as on update: otherwise a member would lift an admin's
	// limit by minting a new key without one.
	if err := s.requirePolicyRole(ctx, caller, false); err != nil {
		return nil, err
	}
	k := keys.Key{WorkspaceID: req.WorkspaceId, MemberID: member, Name: b.Name,
		IncludeBYOKInLimit: deref(b.IncludeByokInLimit), RequireZDR: deref(b.RequireZdr),
		ExpiresAt: b.ExpiresAt, Disabled: deref(b.Disabled)}
	if k.Limit, err = limitOf(b.Limit); err != nil {
		return nil, err
	}
	if b.LimitReset != nil {
		k.LimitReset = string(*b.LimitReset)
	}
	if k.ExpiresAt != nil && !k.ExpiresAt.After(s.now()) {
		return nil, invalid("/expires_at", "expires_at must be in the future.")
	}
	plaintext := keys.Generate()
	created, err := s.store.CreateAPIKey(ctx, k, plaintext, s.now())
	if err != nil {
		return nil, storeError(err, "Member", member)
	}
	return api.CreateKey201JSONResponse{Data: keyWithSecret(created, plaintext)}, nil
}

// policyFields need access.SetKeyPolicy to change (and so does enabling a
// disabled key).
var policyFields = []string{"limit", "limit_reset", "include_byok_in_limit", "require_zdr", "expires_at"}

// requirePolicyRole refuses a caller without access.SetKeyPolicy when the
// body sets any policy field (or always, when force).
func (s *Server) requirePolicyRole(ctx context.Context, caller keys.Key, force bool) error {
	for _, f := range policyFields {
		if present(ctx, f) || force {
			return access.Require(caller.Role, access.SetKeyPolicy)
		}
	}
	return nil
}

// UpdateKey implements api.StrictServerInterface (PATCH: absent keeps, null clears).
func (s *Server) UpdateKey(ctx context.Context, req api.UpdateKeyRequestObject) (api.UpdateKeyResponseObject, error) {
	caller, k, err := s.keyFor(ctx, req.WorkspaceId, req.KeyId, access.ManageOwnKeys, access.ManageAllKeys)
	if err != nil {
		return nil, err
	}
	// Re-enabling is policy too: otherwise a member could undo an admin's
	// disabling of its key.
	reenable := req.Body.Disabled != nil && !*req.Body.Disabled && k.Disabled
	if err := s.requirePolicyRole(ctx, caller, reenable); err != nil {
		return nil, err
	}
	if err := s.mergeKey(ctx, &k, req.Body); err != nil {
		return nil, err
	}
	updated, err := s.store.UpdateAPIKey(ctx, k)
	if err != nil {
		return nil, storeError(err, "Key", req.KeyId)
	}
	return api.UpdateKey200JSONResponse{Data: apiKeyOf(updated)}, nil
}

func (s *Server) mergeKey(ctx context.Context, k *keys.Key, b *api.ApiKeyUpdate) error {
	if b.Name != nil {
		k.Name = *b.Name
	}
	if b.Disabled != nil {
		k.Disabled = *b.Disabled
	}
	if b.IncludeByokInLimit != nil {
		k.IncludeBYOKInLimit = *b.IncludeByokInLimit
	}
	if b.RequireZdr != nil {
		k.RequireZDR = *b.RequireZdr
	}
	if b.Limit != nil || isNull(ctx, "limit") {
		lim, err := limitOf(b.Limit)
		if err != nil {
			return err
		}
		k.Limit = lim
	}
	if b.LimitReset != nil {
		k.LimitReset = string(*b.LimitReset)
	} else if isNull(ctx, "limit_reset") {
		k.LimitReset = ""
	}
	if b.ExpiresAt != nil {
		if !b.ExpiresAt.After(s.now()) {
			return invalid("/expires_at", "expires_at must be in the future; disable the key to stop it now.")
		}
		k.ExpiresAt = b.ExpiresAt
	} else if isNull(ctx, "expires_at") {
		k.ExpiresAt = nil
	}
	return nil
}

// DeleteKey implements api.StrictServerInterface (revoke).
func (s *Server) DeleteKey(ctx context.Context, req api.DeleteKeyRequestObject) (api.DeleteKeyResponseObject, error) {
	if _, _, err := s.keyFor(ctx, req.WorkspaceId, req.KeyId, access.ManageOwnKeys, access.ManageAllKeys); err != nil {
		return nil, err
	}
	if err := s.store.DeleteAPIKey(ctx, req.WorkspaceId, req.KeyId); err != nil {
		return nil, storeError(err, "Key", req.KeyId)
	}
	return api.DeleteKey204Response{}, nil
}

// limitOf parses an exact USD amount; nil means no limit.
func limitOf(n *json.Number) (decimal.NullDecimal, error) { return amountOf("limit", n) }

// amountOf parses the exact USD amount of field; nil means none.
func amountOf(field string, n *json.Number) (decimal.NullDecimal, error) {
	if n == nil {
		return decimal.NullDecimal{}, nil
	}
	d, err := decimal.NewFromString(n.String())
	if err != nil || d.IsNegative() {
		return decimal.NullDecimal{}, invalid("/"+field, "%s must be a non-negative amount in USD, e.g. 25 or 0.5.", field)
	}
	return decimal.NullDecimal{Decimal: d, Valid: true}, nil
}
