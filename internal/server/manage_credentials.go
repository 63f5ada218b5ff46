package server

import (
	"context"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/credentials"
)

func credentialOf(c credentials.Credential) api.Credential {
	out := api.Credential{Id: c.ID, WorkspaceId: c.WorkspaceID, Provider: c.Provider, Name: c.Name, Label: c.Label,
		BaseUrl: opt(c.BaseURL), Disabled: c.Disabled, Priority: c.Priority, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
	if dp := credentials.EffectivePolicy(c); dp != nil {
		out.DataPolicy = &api.DataPolicy{Zdr: dp.ZDR, TrainsOnData: dp.TrainsOnData, RetentionDays: dp.RetentionDays,
			Source: opt(dp.Source), UpdatedAt: opt(dp.UpdatedAt)}
	}
	if az := c.Azure; az != nil {
		out.Azure = &api.AzureSettings{ApiVersion: opt(az.APIVersion)}
		if az.Deployments != nil {
			out.Azure.Deployments = &az.Deployments
		}
	}
	return out
}

// azureOf is the Azure settings of a request; nil when it has none.
func azureOf(a *api.AzureSettings) *credentials.Azure {
	if a == nil {
		return nil
	}
	return &credentials.Azure{APIVersion: deref(a.ApiVersion), Deployments: deref(a.Deployments)}
}

// declaredPolicy is a workspace's declaration; what it leaves out fails
// closed.
func declaredPolicy(d *api.DeclaredDataPolicy) *catalog.DataPolicy {
	if d == nil {
		return nil
	}
	dp := catalog.Unknown
	dp.Source = "declared by the workspace"
	if d.Zdr != nil {
		dp.ZDR = *d.Zdr
	}
	if d.TrainsOnData != nil {
		dp.TrainsOnData = *d.TrainsOnData
	}
	if d.RetentionDays != nil {
		dp.RetentionDays = *d.RetentionDays
	}
	return &dp
}

// ListCredentials implements api.StrictServerInterface.
func (s *Server) ListCredentials(ctx context.Context, req api.ListCredentialsRequestObject) (api.ListCredentialsResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	cs, err := s.credentials.List(ctx, caller)
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
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	c, err := s.credentials.Get(ctx, caller, req.CredentialId)
	if err != nil {
		return nil, err
	}
	return api.GetCredential200JSONResponse{Data: credentialOf(c)}, nil
}

// CreateCredential implements api.StrictServerInterface.
func (s *Server) CreateCredential(ctx context.Context, req api.CreateCredentialRequestObject) (api.CreateCredentialResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	b := req.Body
	c, err := s.credentials.Create(ctx, caller, credentials.Input{Provider: b.Provider, APIKey: deref(b.ApiKey),
		BaseURL: deref(b.BaseUrl), DataPolicy: declaredPolicy(b.DataPolicy), Azure: azureOf(b.Azure), Name: deref(b.Name), Disabled: deref(b.Disabled),
		Priority: deref(b.Priority)})
	if err != nil {
		return nil, err
	}
	return api.CreateCredential201JSONResponse{Data: credentialOf(c)}, nil
}

// UpdateCredential implements api.StrictServerInterface (PATCH: a null
// base_url clears it).
func (s *Server) UpdateCredential(ctx context.Context, req api.UpdateCredentialRequestObject) (api.UpdateCredentialResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	b := req.Body
	ch := credentials.Change{APIKey: b.ApiKey, Name: b.Name, Disabled: b.Disabled, Priority: b.Priority}
	if present(ctx, "base_url") {
		ch.BaseURL = ptrTo(deref(b.BaseUrl))
	}
	if present(ctx, "data_policy") {
		ch.SetDataPolicy, ch.DataPolicy = true, declaredPolicy(b.DataPolicy)
	}
	if present(ctx, "azure") {
		ch.SetAzure, ch.Azure = true, azureOf(b.Azure)
	}
	c, err := s.credentials.Update(ctx, caller, req.CredentialId, ch)
	if err != nil {
		return nil, err
	}
	return api.UpdateCredential200JSONResponse{Data: credentialOf(c)}, nil
}

// DeleteCredential implements api.StrictServerInterface.
func (s *Server) DeleteCredential(ctx context.Context, req api.DeleteCredentialRequestObject) (api.DeleteCredentialResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	if err := s.credentials.Delete(ctx, caller, req.CredentialId); err != nil {
		return nil, err
	}
	return api.DeleteCredential204Response{}, nil
}
