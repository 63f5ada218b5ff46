package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/keys"
)

// KeyByHash implements keys.Lookup.
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (keys.Key, error) {
	r, err := s.q.APIKeyGetByHash(ctx, hash)
	if isNoRows(err) {
		return keys.Key{}, errNotFound
	}
	if err != nil {
		return keys.Key{}, fmt.Errorf("key by hash: %w", err)
	}
	k := keys.Key{
		ID: r.ID, WorkspaceID: r.WorkspaceID, MemberID: r.MemberID, Role: r.Role,
		Name: r.Name, Label: r.Label, Limit: r.LimitUsd,
		IncludeBYOKInLimit: r.IncludeByokInLimit, RequireZDR: r.RequireZdr, Operator: r.Operator,
		ExpiresAt: r.ExpiresAt, Disabled: r.Disabled, CreatedAt: r.CreatedAt,
		GuardrailID: val(r.GuardrailID), MemberGuardrailID: val(r.MemberGuardrailID),
	}
	if r.LimitReset != nil {
		k.LimitReset = *r.LimitReset
	}
	return k, nil
}

// Bootstrapped is what Bootstrap created.
type Bootstrapped struct {
	WorkspaceID, MemberID, KeyID string
}

// Bootstrap creates the first workspace, its owner and an API key with the
// given plaintext, but only on an empty database: it reports created=false
// when a workspace already exists. Concurrent replicas starting at once are
// serialised by an advisory lock so only one bootstraps.
func (s *Store) Bootstrap(ctx context.Context, plaintext string, now time.Time) (b Bootstrapped, created bool, err error) {
	err = s.tx(ctx, func(_ pgx.Tx, q *db.Queries) error {
		if err := q.BootstrapLock(ctx); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		n, err := q.WorkspaceCount(ctx)
		if err != nil {
			return fmt.Errorf("count workspaces: %w", err)
		}
		if n > 0 {
			return nil
		}
		ws, err := q.WorkspaceInsert(ctx, db.WorkspaceInsertParams{ID: ids.New(ids.Workspace, now), Name: "Default", UseOperatorCredentials: true})
		if err != nil {
			return fmt.Errorf("insert workspace: %w", err)
		}
		m, err := q.MemberInsert(ctx, db.MemberInsertParams{ID: ids.New(ids.Member, now), WorkspaceID: ws.ID, Name: "Owner", Role: "owner"})
		if err != nil {
			return fmt.Errorf("insert owner: %w", err)
		}
		k, err := q.APIKeyInsert(ctx, db.APIKeyInsertParams{
			ID: ids.New(ids.Key, now), WorkspaceID: ws.ID, MemberID: m.ID,
			Name: "bootstrap", Label: keys.Label(plaintext), Hash: keys.Hash(plaintext),
			Operator: true, // the first key is the operator's
		})
		if err != nil {
			return fmt.Errorf("insert key: %w", err)
		}
		b, created = Bootstrapped{WorkspaceID: ws.ID, MemberID: m.ID, KeyID: k.ID}, true
		return nil
	})
	if err != nil {
		return Bootstrapped{}, false, fmt.Errorf("bootstrap: %w", err)
	}
	return b, created, nil
}
