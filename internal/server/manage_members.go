package server

import (
	"context"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/store"
)

func memberOf(m store.Member) api.Member {
	return api.Member{Id: m.ID, WorkspaceId: m.WorkspaceID, Name: m.Name, Email: opt(m.Email), Role: api.Role(m.Role), CreatedAt: m.CreatedAt}
}

// ListMembers implements api.StrictServerInterface.
func (s *Server) ListMembers(ctx context.Context, req api.ListMembersRequestObject) (api.ListMembersResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.ReadMembers); err != nil {
		return nil, err
	}
	ms, err := s.store.Members(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	out := api.ListMembers200JSONResponse{Data: make([]api.Member, len(ms))}
	for i, m := range ms {
		out.Data[i] = memberOf(m)
	}
	return out, nil
}

// GetMember implements api.StrictServerInterface.
func (s *Server) GetMember(ctx context.Context, req api.GetMemberRequestObject) (api.GetMemberResponseObject, error) {
	if _, err := inWorkspace(ctx, req.WorkspaceId, access.ReadMembers); err != nil {
		return nil, err
	}
	m, err := s.store.Member(ctx, req.WorkspaceId, req.MemberId)
	if err != nil {
		return nil, storeError(err, "Member", req.MemberId)
	}
	return api.GetMember200JSONResponse{Data: memberOf(m)}, nil
}

// CreateMember implements api.StrictServerInterface.
func (s *Server) CreateMember(ctx context.Context, req api.CreateMemberRequestObject) (api.CreateMemberResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId, access.ManageMembers)
	if err != nil {
		return nil, err
	}
	b := req.Body
	if b.Role == access.Owner {
		if err := access.Require(k.Role, access.ManageOwners); err != nil {
			return nil, err
		}
	}
	m, err := s.store.CreateMember(ctx, req.WorkspaceId, b.Name, deref(b.Email), string(b.Role), s.now())
	if err != nil {
		return nil, storeError(err, "Workspace", req.WorkspaceId)
	}
	return api.CreateMember201JSONResponse{Data: memberOf(m)}, nil
}

// UpdateMember implements api.StrictServerInterface.
func (s *Server) UpdateMember(ctx context.Context, req api.UpdateMemberRequestObject) (api.UpdateMemberResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId, access.ManageMembers)
	if err != nil {
		return nil, err
	}
	cur, err := s.store.Member(ctx, req.WorkspaceId, req.MemberId)
	if err != nil {
		return nil, storeError(err, "Member", req.MemberId)
	}
	var role *string
	if r := req.Body.Role; r != nil && string(*r) != cur.Role {
		if cur.Role == access.Owner || *r == access.Owner {
			if err := access.Require(k.Role, access.ManageOwners); err != nil {
				return nil, err
			}
		}
		role = (*string)(r)
	}
	m, err := s.store.UpdateMember(ctx, req.WorkspaceId, req.MemberId, req.Body.Name, req.Body.Email, role)
	if err != nil {
		return nil, storeError(err, "Member", req.MemberId)
	}
	return api.UpdateMember200JSONResponse{Data: memberOf(m)}, nil
}

// DeleteMember implements api.StrictServerInterface.
func (s *Server) DeleteMember(ctx context.Context, req api.DeleteMemberRequestObject) (api.DeleteMemberResponseObject, error) {
	k, err := inWorkspace(ctx, req.WorkspaceId, access.ManageMembers)
	if err != nil {
		return nil, err
	}
	cur, err := s.store.Member(ctx, req.WorkspaceId, req.MemberId)
	if err != nil {
		return nil, storeError(err, "Member", req.MemberId)
	}
	if cur.Role == access.Owner {
		if err := access.Require(k.Role, access.ManageOwners); err != nil {
			return nil, err
		}
	}
	if err := s.store.DeleteMember(ctx, req.WorkspaceId, req.MemberId); err != nil {
		return nil, storeError(err, "Member", req.MemberId)
	}
	return api.DeleteMember204Response{}, nil
}
