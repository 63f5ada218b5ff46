package server

import (
	"context"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/store"
)

func workspaceOf(w store.Workspace) api.Workspace {
	return api.Workspace{Id: w.ID, Name: w.Name, UseOperatorCredentials: w.UseOperatorCredentials, CreatedAt: w.CreatedAt}
}

// ListWorkspaces implements api.StrictServerInterface: a key sees its own.
func (s *Server) ListWorkspaces(ctx context.Context, _ api.ListWorkspacesRequestObject) (api.ListWorkspacesResponseObject, error) {
	k, err := inWorkspace(ctx, callerKey(ctx).WorkspaceID, access.ReadWorkspace)
	if err != nil {
		return nil, err
	}
	w, err := s.store.Workspace(ctx, k.WorkspaceID)
	if err != nil {
		return nil, storeError(err, "Workspace", k.WorkspaceID)
	}
	return api.ListWorkspaces200JSONResponse{Data: []api.Workspace{workspaceOf(w)}}, nil
}

// CreateWorkspace implements api.StrictServerInterface.
func (s *Server) CreateWorkspace(ctx context.Context, req api.CreateWorkspaceRequestObject) (api.CreateWorkspaceResponseObject, error) {
	caller := callerKey(ctx)
	if err := access.RequireOperator(caller.Operator, caller.Role, access.CreateWorkspace); err != nil {
		return nil, err
	}
	b := req.Body
	plaintext := keys.Generate()
	w, m, k, err := s.store.CreateWorkspace(ctx, store.NewWorkspace{
		Name: b.Name, UseOperatorCredentials: b.UseOperatorCredentials != nil && *b.UseOperatorCredentials,
		OwnerName: b.Owner.Name, OwnerEmail: deref(b.Owner.Email), KeyPlaintext: plaintext,
	}, s.now())
	if err != nil {
		return nil, err
	}
	out := api.CreateWorkspace201JSONResponse{}
	out.Data.Workspace, out.Data.Owner, out.Data.Key = workspaceOf(w), memberOf(m), keyWithSecret(k, plaintext)
	return out, nil
}

// GetWorkspace implements api.StrictServerInterface.
func (s *Server) GetWorkspace(ctx context.Context, req api.GetWorkspaceRequestObject) (api.GetWorkspaceResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.ReadWorkspace); err != nil {
		return nil, err
	}
	w, err := s.store.Workspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, storeError(err, "Workspace", req.WorkspaceId)
	}
	return api.GetWorkspace200JSONResponse{Data: workspaceOf(w)}, nil
}

// UpdateWorkspace implements api.StrictServerInterface.
func (s *Server) UpdateWorkspace(ctx context.Context, req api.UpdateWorkspaceRequestObject) (api.UpdateWorkspaceResponseObject, error) {
	caller := callerKey(ctx)
	if req.Body.UseOperatorCredentials != nil {
		// The operator's provider keys are the operator's to lend, on any
		// workspace; nobody else may switch them on or off.
		if err := access.RequireOperator(caller.Operator, caller.Role, access.SetOperatorCreds); err != nil {
			return nil, err
		}
	}
	if !caller.Operator || req.Body.Name != nil {
		if _, err := inWorkspace(ctx, req.WorkspaceId, access.UpdateWorkspace); err != nil {
			return nil, err
		}
	}
	w, err := s.store.UpdateWorkspace(ctx, req.WorkspaceId, req.Body.Name, req.Body.UseOperatorCredentials)
	if err != nil {
		return nil, storeError(err, "Workspace", req.WorkspaceId)
	}
	return api.UpdateWorkspace200JSONResponse{Data: workspaceOf(w)}, nil
}

// DeleteWorkspace implements api.StrictServerInterface.
func (s *Server) DeleteWorkspace(ctx context.Context, req api.DeleteWorkspaceRequestObject) (api.DeleteWorkspaceResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.DeleteWorkspace); err != nil {
		return nil, err
	}
	if err := s.store.DeleteWorkspace(ctx, req.WorkspaceId); err != nil {
		return nil, storeError(err, "Workspace", req.WorkspaceId)
	}
	return api.DeleteWorkspace204Response{}, nil
}
