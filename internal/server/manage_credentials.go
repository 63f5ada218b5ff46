package server

import (
	"context"
	"errors"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/egress"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/secrets"
	"github.com/perpetuo/perpetuo/internal/store"
)

func credentialOf(c store.Credential) api.Credential {
	return api.Credential{Id: c.ID, WorkspaceId: c.WorkspaceID, Provider: c.Provider, Name: c.Name, Label: c.Label,
		BaseUrl: opt(c.BaseURL), Disabled: c.Disabled, Priority: c.Priority, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// ListCredentials implements api.StrictServerInterface.
func (s *Server) ListCredentials(ctx context.Context, req api.ListCredentialsRequestObject) (api.ListCredentialsResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.ReadCredentials); err != nil {
		return nil, err
	}
	cs, err := s.store.Credentials(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	out := api.ListCredentials200JSONResponse{Data: make([]api.Credential, len(cs))}
	for i, c := range cs {
		out.Data[i] = credentialOf(c)
	}
	return out, nil
}

// GetCredential implements api.StrictServerInterface.
func (s *Server) GetCredential(ctx context.Context, req api.GetCredentialRequestObject) (api.GetCredentialResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.ReadCredentials); err != nil {
		return nil, err
	}
	c, err := s.store.Credential(ctx, req.WorkspaceId, req.CredentialId)
	if err != nil {
		return nil, storeError(err, "Credential", req.CredentialId)
	}
	return api.GetCredential200JSONResponse{Data: credentialOf(c)}, nil
}

// CreateCredential implements api.StrictServerInterface.
func (s *Server) CreateCredential(ctx context.Context, req api.CreateCredentialRequestObject) (api.CreateCredentialResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.ManageCredentials); err != nil {
		return nil, err
	}
	b := req.Body
	if _, ok := s.catalog.Provider(b.Provider); !ok {
		return nil, invalid("/provider", "Provider '%s' is not in the catalog; use a provider slug such as 'openai'.", b.Provider)
	}
	if deref(b.ApiKey) == "" {
		return nil, invalid("/api_key", "api_key is required.")
	}
	if err := s.checkBaseURL(deref(b.BaseUrl)); err != nil {
		return nil, err
	}
	c := store.Credential{ID: ids.New(ids.Credential, s.now()), WorkspaceID: req.WorkspaceId, Provider: b.Provider,
		Name: deref(b.Name), BaseURL: deref(b.BaseUrl), Disabled: deref(b.Disabled), Priority: deref(b.Priority)}
	if c.Name == "" {
		c.Name = b.Provider
	}
	if err := s.seal(&c, *b.ApiKey); err != nil {
		return nil, err
	}
	created, err := s.store.CreateCredential(ctx, c)
	if err != nil {
		return nil, storeError(err, "Workspace", req.WorkspaceId)
	}
	return api.CreateCredential201JSONResponse{Data: credentialOf(created)}, nil
}

// UpdateCredential implements api.StrictServerInterface.
func (s *Server) UpdateCredential(ctx context.Context, req api.UpdateCredentialRequestObject) (api.UpdateCredentialResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.ManageCredentials); err != nil {
		return nil, err
	}
	c, err := s.store.Credential(ctx, req.WorkspaceId, req.CredentialId)
	if err != nil {
		return nil, storeError(err, "Credential", req.CredentialId)
	}
	b := req.Body
	if b.Name != nil {
		c.Name = *b.Name
	}
	if b.Disabled != nil {
		c.Disabled = *b.Disabled
	}
	if b.Priority != nil {
		c.Priority = *b.Priority
	}
	if b.BaseUrl != nil {
		if err := s.checkBaseURL(*b.BaseUrl); err != nil {
			return nil, err
		}
		c.BaseURL = *b.BaseUrl
	} else if isNull(ctx, "base_url") {
		c.BaseURL = ""
	}
	if b.ApiKey != nil {
		if err := s.seal(&c, *b.ApiKey); err != nil {
			return nil, err
		}
	}
	updated, err := s.store.UpdateCredential(ctx, c)
	if err != nil {
		return nil, storeError(err, "Credential", req.CredentialId)
	}
	return api.UpdateCredential200JSONResponse{Data: credentialOf(updated)}, nil
}

// DeleteCredential implements api.StrictServerInterface.
func (s *Server) DeleteCredential(ctx context.Context, req api.DeleteCredentialRequestObject) (api.DeleteCredentialResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.ManageCredentials); err != nil {
		return nil, err
	}
	if err := s.store.DeleteCredential(ctx, req.WorkspaceId, req.CredentialId); err != nil {
		return nil, storeError(err, "Credential", req.CredentialId)
	}
	return api.DeleteCredential204Response{}, nil
}

// seal encrypts the API key bound to the credential's id and sets its mask.
func (s *Server) seal(c *store.Credential, apiKey string) error {
	sealed, err := s.keyring.Seal([]byte(apiKey), []byte(c.ID))
	if err != nil {
		return err
	}
	c.Secret, c.Label = sealed, secrets.Mask(apiKey)
	return nil
}

// checkBaseURL applies the egress rules to a workspace's base URL ("" keeps
// the catalog's). The message names the rule broken, never the value: it may
// be a probe of the gateway's network.
func (s *Server) checkBaseURL(raw string) error {
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
