package server

import (
	"context"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/store"
)

func memberOf(m store.Member) api.Member {
	return api.Member{Id: m.ID, WorkspaceId: m.WorkspaceID, Name: m.Name, Email: opt(m.Email), Role: api.Role(m.Role), GuardrailId: opt(m.GuardrailID), CreatedAt: m.CreatedAt}
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
	if err := ownerGuard(k, string(b.Role)); err != nil {
		return nil, err
	}
	m, err := s.store.CreateMember(ctx, req.WorkspaceId, b.Name, deref(b.Email), string(b.Role), s.now())
	if err != nil {
		return nil, storeError(err, "Workspace", req.WorkspaceId)
	}
	return api.CreateMember201JSONResponse{Data: memberOf(m)}, nil
}

// managedMember loads a member the caller may manage: owners only by owners.
func (s *Server) managedMember(ctx context.Context, workspaceID, memberID string) (keys.Key, store.Member, error) {
	k, err := inWorkspace(ctx, workspaceID, access.ManageMembers)
	if err != nil {
		return keys.Key{}, store.Member{}, err
	}
	cur, err := s.store.Member(ctx, workspaceID, memberID)
	if err != nil {
		return keys.Key{}, store.Member{}, storeError(err, "Member", memberID)
	}
	if err := ownerGuard(k, cur.Role); err != nil {
		return keys.Key{}, store.Member{}, err
	}
	return k, cur, nil
}

// UpdateMember implements api.StrictServerInterface.
func (s *Server) UpdateMember(ctx context.Context, req api.UpdateMemberRequestObject) (api.UpdateMemberResponseObject, error) {
	k, cur, err := s.managedMember(ctx, req.WorkspaceId, req.MemberId)
	if err != nil {
		return nil, err
	}
	var role *string
	if r := req.Body.Role; r != nil && string(*r) != cur.Role {
		if err := ownerGuard(k, string(*r)); err != nil {
			return nil, err
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
	if _, _, err := s.managedMember(ctx, req.WorkspaceId, req.MemberId); err != nil {
		return nil, err
	}
	if err := s.store.DeleteMember(ctx, req.WorkspaceId, req.MemberId); err != nil {
		return nil, storeError(err, "Member", req.MemberId)
	}
	return api.DeleteMember204Response{}, nil
}
