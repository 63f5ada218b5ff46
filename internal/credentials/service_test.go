package credentials_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/apierr/apierrtest"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/credentials"
	"github.com/perpetuo/perpetuo/internal/egress"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/secrets"
	"github.com/perpetuo/perpetuo/internal/store"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

func newService(t *testing.T, st credentials.Store) (*credentials.Service, *secrets.Keyring) {
	t.Helper()
	cat, err := catalog.Parse([]byte(`{"providers":[{"slug":"openai","name":"OpenAI","api":"openai"}],"models":[]}`))
	require.NoError(t, err)
	k, err := secrets.GenerateKey()
	require.NoError(t, err)
	ring := secrets.NewKeyring(k)
	return credentials.NewService(st, cat, ring, egress.Policy{}, nil), ring
}

// setup returns a service over a real store and an admin of a workspace.
func setup(t *testing.T) (*credentials.Service, *store.Store, *secrets.Keyring, keys.Key) {
	t.Helper()
	st := store.New(pgtest.New(t))
	w, o, _, err := st.CreateWorkspace(context.Background(), workspaces.NewWorkspace{Name: "w", OwnerName: "o", KeyPlaintext: keys.Generate()}, time.Now())
	require.NoError(t, err)
	svc, ring := newService(t, st)
	return svc, st, ring, keys.Key{WorkspaceID: w.ID, MemberID: o.ID, Role: access.Admin}
}

var requireError = apierrtest.Require

// TestCreateChecks: each refusal names its field, before the store is
// asked; a base URL is refused by the rule it breaks, never echoed.
func TestCreateChecks(t *testing.T) {
	t.Parallel()
	svc, _ := newService(t, nil)
	admin := keys.Key{WorkspaceID: "ws_1", Role: access.Admin}
	for _, tc := range []struct {
		in    credentials.Input
		field string
	}{
		{credentials.Input{Provider: "nope", APIKey: "sk-1"}, "/provider"},
		{credentials.Input{Provider: "openai"}, "/api_key"},
		{credentials.Input{Provider: "openai", APIKey: "sk-1", BaseURL: "http://127.0.0.1:8080/secret-path"}, "/base_url"},
		{credentials.Input{Provider: "openai", APIKey: "sk-1", BaseURL: "http://169.254.169.254/secret-path"}, "/base_url"},
		{credentials.Input{Provider: "openai", APIKey: "sk-1", BaseURL: "ftp://example.com/secret-path"}, "/base_url"},
	} {
		_, err := svc.Create(context.Background(), admin, tc.in)
		e := requireError(t, err, 400, apierr.InvalidRequest, tc.field)
		require.False(t, strings.Contains(e.Message, "secret-path"), "never echoes the URL: %s", e.Message)
	}
	for _, role := range []string{access.Member, access.Viewer} {
		_, err := svc.Create(context.Background(), keys.Key{WorkspaceID: "ws_1", Role: role}, credentials.Input{Provider: "openai", APIKey: "sk-1"})
		requireError(t, err, 403, apierr.PermissionDenied, "")
	}
	_, err := svc.List(context.Background(), keys.Key{WorkspaceID: "ws_1", Role: access.Member})
	requireError(t, err, 403, apierr.PermissionDenied, "")
}

// TestSealedToItsRow: the stored secret opens only bound to the
// credential's id, the label masks it, and the name defaults to the
// provider.
func TestSealedToItsRow(t *testing.T) {
	t.Parallel()
	svc, st, ring, admin := setup(t)
	ctx := context.Background()
	c, err := svc.Create(ctx, admin, credentials.Input{Provider: "openai", APIKey: "sk-live-123456789"})
	require.NoError(t, err)
	require.Equal(t, "openai", c.Name)
	require.NotContains(t, c.Label, "123456789")
	stored, err := st.Credential(ctx, admin.WorkspaceID, c.ID)
	require.NoError(t, err)
	plain, err := ring.Open(stored.Secret, []byte(c.ID))
	require.NoError(t, err)
	require.Equal(t, "sk-live-123456789", string(plain))
	_, err = ring.Open(stored.Secret, []byte("cred_other"))
	require.Error(t, err, "bound to its row")

	c, err = svc.Update(ctx, admin, c.ID, credentials.Change{APIKey: ptr("sk-next-987654321")})
	require.NoError(t, err)
	plain, err = ring.Open(c.Secret, []byte(c.ID))
	require.NoError(t, err)
	require.Equal(t, "sk-next-987654321", string(plain))
}

// TestUpdate: a base URL is checked like on create; "" clears it; absent
// fields are kept.
func TestUpdate(t *testing.T) {
	t.Parallel()
	svc, _, _, admin := setup(t)
	ctx := context.Background()
	c, err := svc.Create(ctx, admin, credentials.Input{Provider: "openai", APIKey: "sk-1", Name: "main",
		BaseURL: "https://proxy.example.com/v1", Priority: 2})
	require.NoError(t, err)
	_, err = svc.Update(ctx, admin, c.ID, credentials.Change{BaseURL: ptr("http://localhost/v1")})
	requireError(t, err, 400, apierr.InvalidRequest, "/base_url")
	c, err = svc.Update(ctx, admin, c.ID, credentials.Change{Disabled: ptr(true)})
	require.NoError(t, err)
	require.Equal(t, "https://proxy.example.com/v1", c.BaseURL)
	require.Equal(t, "main", c.Name)
	require.Equal(t, 2, c.Priority)
	c, err = svc.Update(ctx, admin, c.ID, credentials.Change{BaseURL: ptr("")})
	require.NoError(t, err)
	require.Empty(t, c.BaseURL)
	require.True(t, c.Disabled)
}

// TestCredentialNotFound names the credential, as the API answers it.
func TestCredentialNotFound(t *testing.T) {
	t.Parallel()
	svc, _, _, admin := setup(t)
	ctx := context.Background()
	_, err := svc.Get(ctx, admin, "cred_nope")
	e := requireError(t, err, 404, apierr.NotFound, "")
	require.Equal(t, "Credential cred_nope not found.", e.Message)
	_, err = svc.Update(ctx, admin, "cred_nope", credentials.Change{Name: ptr("x")})
	requireError(t, err, 404, apierr.NotFound, "")
	requireError(t, svc.Delete(ctx, admin, "cred_nope"), 404, apierr.NotFound, "")
}

func ptr[T any](v T) *T { return &v }
