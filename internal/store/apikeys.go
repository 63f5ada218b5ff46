package store

import (
	"context"
	"fmt"
	"time"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/notify"
)

var _ keys.Store = (*Store)(nil)

func keyOf(r db.ApiKey, role string) keys.Key {
	k := keys.Key{
		ID: r.ID, WorkspaceID: r.WorkspaceID, MemberID: r.MemberID, Role: role,
		Name: r.Name, Label: r.Label, Limit: r.LimitUsd,
		IncludeBYOKInLimit: r.IncludeByokInLimit, RequireZDR: r.RequireZdr, Operator: r.Operator,
		ExpiresAt: r.ExpiresAt, Disabled: r.Disabled, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		GuardrailID: val(r.GuardrailID),
	}
	if r.LimitReset != nil {
		k.LimitReset = *r.LimitReset
	}
	return k
}

// APIKeys implements keys.Store: a workspace's keys, or one member's when
// memberID is set. Roles are not filled in.
func (s *Store) APIKeys(ctx context.Context, workspaceID, memberID string) ([]keys.Key, error) {
	rows, err := s.q.APIKeyList(ctx, db.APIKeyListParams{WorkspaceID: workspaceID, MemberID: ptr(memberID)})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	out := make([]keys.Key, len(rows))
	for i, r := range rows {
		out[i] = keyOf(r, "")
	}
	return out, nil
}

// APIKey implements keys.Store (role not filled in).
func (s *Store) APIKey(ctx context.Context, workspaceID, id string) (keys.Key, error) {
	r, err := s.q.APIKeyGetByID(ctx, db.APIKeyGetByIDParams{ID: id, WorkspaceID: workspaceID})
	if isNoRows(err) {
		return keys.Key{}, errNotFound
	}
	if err != nil {
		return keys.Key{}, fmt.Errorf("get key: %w", err)
	}
	return keyOf(r, ""), nil
}

// CreateAPIKey implements keys.Store: it stores only the key's hash and
// label, for k.MemberID.
func (s *Store) CreateAPIKey(ctx context.Context, k keys.Key, plaintext string, now time.Time) (keys.Key, error) {
	r, err := s.q.APIKeyInsert(ctx, db.APIKeyInsertParams{
		ID: ids.New(ids.Key, now), WorkspaceID: k.WorkspaceID, MemberID: k.MemberID, Name: k.Name,
		Label: keys.Label(plaintext), Hash: keys.Hash(plaintext), LimitUsd: k.Limit, LimitReset: ptr(k.LimitReset),
		IncludeByokInLimit: k.IncludeBYOKInLimit, RequireZdr: k.RequireZDR, ExpiresAt: k.ExpiresAt, Disabled: k.Disabled,
		Operator: k.Operator,
	})
	if isForeignKey(err) {
		return keys.Key{}, errNotFound
	}
	if err != nil {
		return keys.Key{}, fmt.Errorf("insert key: %w", err)
	}
	return keyOf(r, ""), nil
}

// UpdateAPIKey implements keys.Store: it writes k's mutable fields, which
// the key's next request on every replica sees.
func (s *Store) UpdateAPIKey(ctx context.Context, k keys.Key) (keys.Key, error) {
	var out keys.Key
	err := s.change(ctx, notify.Key, k.ID, func(q *db.Queries) error {
		r, err := q.APIKeyUpdate(ctx, db.APIKeyUpdateParams{
			ID: k.ID, WorkspaceID: k.WorkspaceID, Name: k.Name, LimitUsd: k.Limit, LimitReset: ptr(k.LimitReset),
			IncludeByokInLimit: k.IncludeBYOKInLimit, RequireZdr: k.RequireZDR, ExpiresAt: k.ExpiresAt, Disabled: k.Disabled,
		})
		if isNoRows(err) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("update key: %w", err)
		}
		out = keyOf(r, "")
		if !k.Limit.Valid {
			return nil
		}
		// A limit set (or re-periodised) mid-period counts what the key
		// already spent in that period.
		err = q.SpendSeed(ctx, db.SpendSeedParams{KeyID: k.ID, IncludeByok: k.IncludeBYOKInLimit,
			PeriodStart: budget.PeriodStart(k.LimitReset, time.Now())})
		if err != nil {
			return fmt.Errorf("seed key spend: %w", err)
		}
		return nil
	})
	return out, err
}

// DeleteAPIKey implements keys.Store: the key's next request on every
// replica fails.
func (s *Store) DeleteAPIKey(ctx context.Context, workspaceID, id string) error {
	return s.change(ctx, notify.Key, id, func(q *db.Queries) error {
		n, err := q.APIKeyDelete(ctx, db.APIKeyDeleteParams{ID: id, WorkspaceID: workspaceID})
		if err != nil {
			return fmt.Errorf("delete key: %w", err)
		}
		if n == 0 {
			return errNotFound
		}
		return nil
	})
}
