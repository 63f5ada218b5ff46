package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/secrets"
	"github.com/perpetuo/perpetuo/internal/store"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

// RotateSecrets re-encrypts every BYOK credential that is not sealed under
// the keyring's current key. Run it with the new key as PERPETUO_MASTER_KEY
// and the old one as PERPETUO_MASTER_KEY_OLD; afterwards the old key can go.
func RotateSecrets(ctx context.Context, st *store.Store, ring *secrets.Keyring) (rewritten, skipped int, err error) {
	return st.RotateSecrets(ctx, func(id string, sealed []byte) ([]byte, error) {
		if !ring.NeedsRotation(sealed) {
			return nil, nil
		}
		plain, err := ring.Open(sealed, []byte(id))
		if err != nil {
			return nil, fmt.Errorf("open: %w", err)
		}
		return ring.Seal(plain, []byte(id))
	})
}

// NewKeyRequest is what `perpetuo keys create` asks for.
type NewKeyRequest struct {
	WorkspaceID   string // "" with WorkspaceName set: create a workspace
	WorkspaceName string
	MemberID      string // "" : create a member with Role
	MemberName    string
	Role          string
	KeyName       string
	// Operator makes the key an operator key.
	Operator bool
}

// CreateKey creates an API key for operators, creating the workspace and
// member it needs, and returns the key with its plaintext.
func CreateKey(ctx context.Context, st *store.Store, r NewKeyRequest, now time.Time) (keys.Key, string, error) {
	plaintext := keys.Generate()
	if r.WorkspaceID == "" {
		if r.WorkspaceName == "" {
			return keys.Key{}, "", errors.New("give --workspace ws_... or --workspace-name NAME to create one")
		}
		// The CLI is the operator's (it needs the database): its workspaces
		// use the operator's provider keys.
		_, _, k, err := st.CreateWorkspace(ctx, workspaces.NewWorkspace{Name: r.WorkspaceName, UseOperatorCredentials: true,
			OwnerName: or(r.MemberName, "Owner"), KeyPlaintext: plaintext, KeyOperator: r.Operator}, now)
		return k, plaintext, err
	}
	if _, err := st.Workspace(ctx, r.WorkspaceID); err != nil {
		return keys.Key{}, "", fmt.Errorf("workspace %s: %w", r.WorkspaceID, err)
	}
	member := r.MemberID
	if member != "" {
		if _, err := st.Member(ctx, r.WorkspaceID, member); err != nil {
			return keys.Key{}, "", fmt.Errorf("member %s in workspace %s: %w", member, r.WorkspaceID, err)
		}
	} else {
		if !access.Valid(r.Role) {
			return keys.Key{}, "", fmt.Errorf("--role %q: use owner, admin, member or viewer", r.Role)
		}
		m, err := st.CreateMember(ctx, r.WorkspaceID, workspaces.NewMember{Name: or(r.MemberName, r.Role), Role: r.Role}, now)
		if err != nil {
			return keys.Key{}, "", err
		}
		member = m.ID
	}
	k, err := st.CreateAPIKey(ctx, keys.Key{WorkspaceID: r.WorkspaceID, MemberID: member, Name: or(r.KeyName, "cli"),
		Operator: r.Operator}, plaintext, now)
	if err != nil {
		return keys.Key{}, "", fmt.Errorf("create key: %w", err)
	}
	return k, plaintext, nil
}

func or(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
