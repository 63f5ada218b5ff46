package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/credentials"
	"github.com/perpetuo/perpetuo/internal/notify"
)

var (
	_ credentials.Store  = (*Store)(nil)
	_ credentials.Source = (*Store)(nil)
)

func credentialOf(c db.Credential) credentials.Credential {
	out := credentials.Credential{ID: c.ID, WorkspaceID: c.WorkspaceID, Provider: c.Provider, Name: c.Name, Label: c.Label,
		Secret: c.Secret, BaseURL: val(c.BaseUrl), Disabled: c.Disabled, Priority: int(c.Priority),
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if len(c.Azure) > 0 {
		var az credentials.Azure
		if json.Unmarshal(c.Azure, &az) == nil { // written by azureJSON
			out.Azure = &az
		}
	}
	if len(c.DataPolicy) > 0 {
		var dp catalog.DataPolicy
		if json.Unmarshal(c.DataPolicy, &dp) == nil { // unreadable: none declared, which fails closed
			out.DataPolicy = &dp
		}
	}
	return out
}

// azureJSON is a credential's Azure settings as stored; nil when none.
func azureJSON(az *credentials.Azure) []byte {
	if az == nil {
		return nil
	}
	b, _ := json.Marshal(az) // strings only
	return b
}

// policyJSON is a declared data policy as stored; nil when none is.
func policyJSON(dp *catalog.DataPolicy) []byte {
	if dp == nil {
		return nil
	}
	b, _ := json.Marshal(dp) // a DataPolicy always marshals
	return b
}

// Credentials implements credentials.Store and credentials.Source: a
// workspace's credentials, by provider then priority.
func (s *Store) Credentials(ctx context.Context, workspaceID string) ([]credentials.Credential, error) {
	rows, err := s.q.CredentialList(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("list credentials: %w", err)
	}
	out := make([]credentials.Credential, len(rows))
	for i, r := range rows {
		out[i] = credentialOf(r)
	}
	return out, nil
}

// Credential implements credentials.Store.
func (s *Store) Credential(ctx context.Context, workspaceID, id string) (credentials.Credential, error) {
	r, err := s.q.CredentialGetByID(ctx, db.CredentialGetByIDParams{ID: id, WorkspaceID: workspaceID})
	if isNoRows(err) {
		return credentials.Credential{}, errNotFound
	}
	if err != nil {
		return credentials.Credential{}, fmt.Errorf("get credential: %w", err)
	}
	return credentialOf(r), nil
}

// CreateCredential implements credentials.Store; every replica's routing
// sees the credential at once.
func (s *Store) CreateCredential(ctx context.Context, c credentials.Credential) (credentials.Credential, error) {
	var out credentials.Credential
	err := s.change(ctx, notify.Credential, c.WorkspaceID, func(q *db.Queries) error {
		r, err := q.CredentialInsert(ctx, db.CredentialInsertParams{ID: c.ID, WorkspaceID: c.WorkspaceID, Provider: c.Provider,
			Name: c.Name, Label: c.Label, Secret: c.Secret, BaseUrl: ptr(c.BaseURL), Disabled: c.Disabled, Priority: int32(c.Priority),
			DataPolicy: policyJSON(c.DataPolicy), Azure: azureJSON(c.Azure)})
		if isForeignKey(err) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("insert credential: %w", err)
		}
		out = credentialOf(r)
		return nil
	})
	return out, err
}

// UpdateCredential implements credentials.Store: it writes c's mutable
// fields.
func (s *Store) UpdateCredential(ctx context.Context, c credentials.Credential) (credentials.Credential, error) {
	var out credentials.Credential
	err := s.change(ctx, notify.Credential, c.WorkspaceID, func(q *db.Queries) error {
		r, err := q.CredentialUpdate(ctx, db.CredentialUpdateParams{ID: c.ID, WorkspaceID: c.WorkspaceID, Name: c.Name,
			Label: c.Label, Secret: c.Secret, BaseUrl: ptr(c.BaseURL), Disabled: c.Disabled, Priority: int32(c.Priority),
			DataPolicy: policyJSON(c.DataPolicy), Azure: azureJSON(c.Azure)})
		if isNoRows(err) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("update credential: %w", err)
		}
		out = credentialOf(r)
		return nil
	})
	return out, err
}

// DeleteCredential implements credentials.Store.
func (s *Store) DeleteCredential(ctx context.Context, workspaceID, id string) error {
	return s.change(ctx, notify.Credential, workspaceID, func(q *db.Queries) error {
		n, err := q.CredentialDelete(ctx, db.CredentialDeleteParams{ID: id, WorkspaceID: workspaceID})
		if err != nil {
			return fmt.Errorf("delete credential: %w", err)
		}
		if n == 0 {
			return errNotFound
		}
		return nil
	})
}

// RotateSecrets re-encrypts every credential whose secret needs it with
// reseal(id, old) (nil, nil = leave as is). A row changed meanwhile is
// skipped and reported, never overwritten. It returns how many were
// rewritten and skipped.
func (s *Store) RotateSecrets(ctx context.Context, reseal func(id string, secret []byte) ([]byte, error)) (rewritten, skipped int, err error) {
	rows, err := s.q.CredentialListAll(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("list credentials: %w", err)
	}
	workspaces := map[string]bool{}
	for _, r := range rows {
		next, err := reseal(r.ID, r.Secret)
		if err != nil {
			return rewritten, skipped, fmt.Errorf("credential %s: %w", r.ID, err)
		}
		if next == nil {
			continue
		}
		n, err := s.q.CredentialSetSecret(ctx, db.CredentialSetSecretParams{ID: r.ID, OldSecret: r.Secret, NewSecret: next})
		if err != nil {
			return rewritten, skipped, fmt.Errorf("credential %s: write: %w", r.ID, err)
		}
		if n == 0 {
			skipped++
			continue
		}
		rewritten++
		workspaces[r.WorkspaceID] = true
	}
	for ws := range workspaces {
		if err := notify.Publish(ctx, s.pool, notify.Event{Kind: notify.Credential, ID: ws}); err != nil {
			return rewritten, skipped, err
		}
	}
	return rewritten, skipped, nil
}
