package credentials

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/egress"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/secrets"
)

// Input is a credential to create.
type Input struct {
	Provider string
	APIKey   string
	BaseURL  string // "": the catalog's URL for the provider
	// DataPolicy is what BaseURL does with data, as declared (nil: none,
	// which fails closed); only with a BaseURL.
	DataPolicy *catalog.DataPolicy
	Azure      *Azure // only for an azure-family provider
	Name       string // "": the provider's slug
	Disabled   bool
	Priority   int
}

// Change is what a credential update changes: nil fields are kept.
type Change struct {
	APIKey  *string
	BaseURL *string // "" clears it, and the data policy with it
	// SetDataPolicy replaces the declared data policy with DataPolicy
	// (nil clears it).
	SetDataPolicy bool
	DataPolicy    *catalog.DataPolicy
	// SetAzure replaces the Azure settings with Azure (nil clears them).
	SetAzure bool
	Azure    *Azure
	Name     *string
	Disabled *bool
	Priority *int
}

// ErrNotFound is returned by a Store that has no such credential (or, on
// create, no such workspace).
var ErrNotFound = errors.New("not found")

// Store persists credentials. Every change publishes the invalidation that
// makes every replica's Cache reload the workspace's set.
type Store interface {
	Credentials(ctx context.Context, workspaceID string) ([]Credential, error)
	Credential(ctx context.Context, workspaceID, id string) (Credential, error)
	// CreateCredential stores c with the ID it has: the secret is sealed
	// bound to it before the row exists.
	CreateCredential(ctx context.Context, c Credential) (Credential, error)
	UpdateCredential(ctx context.Context, c Credential) (Credential, error)
	DeleteCredential(ctx context.Context, workspaceID, id string) error
}

// Service applies the management rules over a Store.
type Service struct {
	store   Store
	catalog *catalog.Catalog
	ring    *secrets.Keyring
	egress  egress.Policy
	now     func() time.Time
}

// NewService returns a Service sealing with ring and checking base URLs
// with policy; now may be nil.
func NewService(st Store, cat *catalog.Catalog, ring *secrets.Keyring, policy egress.Policy, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, catalog: cat, ring: ring, egress: policy, now: now}
}

// List returns the caller's workspace's credentials, secrets sealed.
func (s *Service) List(ctx context.Context, caller keys.Key) ([]Credential, error) {
	if err := access.Require(caller.Role, access.ReadCredentials); err != nil {
		return nil, err
	}
	return s.store.Credentials(ctx, caller.WorkspaceID)
}

// Get returns one credential of the caller's workspace, its secret sealed.
func (s *Service) Get(ctx context.Context, caller keys.Key, id string) (Credential, error) {
	if err := access.Require(caller.Role, access.ReadCredentials); err != nil {
		return Credential{}, err
	}
	c, err := s.store.Credential(ctx, caller.WorkspaceID, id)
	if err != nil {
		return Credential{}, notFound(err, "Credential", id)
	}
	return c, nil
}

// Create checks in and stores it, its API key sealed.
func (s *Service) Create(ctx context.Context, caller keys.Key, in Input) (Credential, error) {
	if err := access.Require(caller.Role, access.ManageCredentials); err != nil {
		return Credential{}, err
	}
	prov, ok := s.catalog.Provider(in.Provider)
	if !ok {
		return Credential{}, invalid("/provider", "Provider '%s' is not in the catalog; use a provider slug such as 'openai'.", in.Provider)
	}
	if in.Azure != nil && prov.API != "azure" {
		return Credential{}, invalid("/azure", "Azure settings are for an Azure OpenAI provider; '%s' is not one.", in.Provider)
	}
	if in.APIKey == "" {
		return Credential{}, invalid("/api_key", "api_key is required.")
	}
	if err := s.checkBaseURL(in.BaseURL); err != nil {
		return Credential{}, err
	}
	if err := checkDataPolicy(in.BaseURL, in.DataPolicy); err != nil {
		return Credential{}, err
	}
	c := Credential{ID: ids.New(ids.Credential, s.now()), WorkspaceID: caller.WorkspaceID, Provider: in.Provider,
		Name: in.Name, BaseURL: in.BaseURL, DataPolicy: in.DataPolicy, Azure: in.Azure, Disabled: in.Disabled, Priority: in.Priority}
	if c.Name == "" {
		c.Name = in.Provider
	}
	if err := s.seal(&c, in.APIKey); err != nil {
		return Credential{}, err
	}
	created, err := s.store.CreateCredential(ctx, c)
	if err != nil {
		return Credential{}, notFound(err, "Workspace", caller.WorkspaceID)
	}
	return created, nil
}

// Update applies ch to a credential; a new API key is sealed like on
// create.
func (s *Service) Update(ctx context.Context, caller keys.Key, id string, ch Change) (Credential, error) {
	if err := access.Require(caller.Role, access.ManageCredentials); err != nil {
		return Credential{}, err
	}
	c, err := s.store.Credential(ctx, caller.WorkspaceID, id)
	if err != nil {
		return Credential{}, notFound(err, "Credential", id)
	}
	if ch.Name != nil {
		c.Name = *ch.Name
	}
	if ch.Disabled != nil {
		c.Disabled = *ch.Disabled
	}
	if ch.Priority != nil {
		c.Priority = *ch.Priority
	}
	if ch.BaseURL != nil {
		if err := s.checkBaseURL(*ch.BaseURL); err != nil {
			return Credential{}, err
		}
		c.BaseURL = *ch.BaseURL
		if c.BaseURL == "" {
			c.DataPolicy = nil // it described where the base URL sent traffic
		}
	}
	if ch.SetDataPolicy {
		c.DataPolicy = ch.DataPolicy
	}
	if ch.SetAzure {
		if p, ok := s.catalog.Provider(c.Provider); ch.Azure != nil && (!ok || p.API != "azure") {
			return Credential{}, invalid("/azure", "Azure settings are for an Azure OpenAI provider; '%s' is not one.", c.Provider)
		}
		c.Azure = ch.Azure
	}
	if err := checkDataPolicy(c.BaseURL, c.DataPolicy); err != nil {
		return Credential{}, err
	}
	if ch.APIKey != nil {
		if err := s.seal(&c, *ch.APIKey); err != nil {
			return Credential{}, err
		}
	}
	updated, err := s.store.UpdateCredential(ctx, c)
	if err != nil {
		return Credential{}, notFound(err, "Credential", id)
	}
	return updated, nil
}

// Delete deletes a credential of the caller's workspace.
func (s *Service) Delete(ctx context.Context, caller keys.Key, id string) error {
	if err := access.Require(caller.Role, access.ManageCredentials); err != nil {
		return err
	}
	return notFound(s.store.DeleteCredential(ctx, caller.WorkspaceID, id), "Credential", id)
}

// seal encrypts the API key bound to the credential's id, so a sealed
// secret copied to another row does not open, and sets its mask.
func (s *Service) seal(c *Credential, apiKey string) error {
	sealed, err := s.ring.Seal([]byte(apiKey), []byte(c.ID))
	if err != nil {
		return err
	}
	c.Secret, c.Label = sealed, secrets.Mask(apiKey)
	return nil
}

// checkBaseURL applies the egress rules to a base URL ("" keeps the
// catalog's). The message names the rule broken, never the value: it may
// be a probe of the gateway's network.
func (s *Service) checkBaseURL(raw string) error {
	if raw == "" {
		return nil
	}
	err := s.egress.CheckURL(raw)
	var ue *egress.URLError
	if errors.As(err, &ue) {
		return invalid("/base_url", "%s.", ue.Error())
	}
	return err
}

// checkDataPolicy refuses a declared data policy without a base URL: the
// catalog's policy for the provider is the one that applies there.
func checkDataPolicy(baseURL string, dp *catalog.DataPolicy) error {
	if dp != nil && baseURL == "" {
		return invalid("/data_policy", "data_policy describes where base_url sends traffic; without a base_url the catalog's data policy for the provider applies (GET /v1/providers).")
	}
	return nil
}

func invalid(field, format string, args ...any) *apierr.Error {
	return apierr.New(http.StatusBadRequest, apierr.InvalidRequest, format, args...).With("field", field)
}

func notFound(err error, what, id string) error {
	if errors.Is(err, ErrNotFound) {
		return apierr.New(http.StatusNotFound, apierr.NotFound, "%s %s not found.", what, id)
	}
	return err
}
