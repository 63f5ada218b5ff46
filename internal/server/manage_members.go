package server

import (
	"context"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

func memberOf(m workspaces.Member) api.Member {
	return api.Member{Id: m.ID, UserId: m.ID, WorkspaceId: m.WorkspaceID, Name: m.Name, Email: opt(m.Email), Role: api.Role(m.Role), GuardrailId: opt(m.GuardrailID), CreatedAt: m.CreatedAt}
}

// ListMembers implements api.StrictServerInterface.
func (s *Server) ListMembers(ctx context.Context, req api.ListMembersRequestObject) (api.ListMembersResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	ms, err := s.workspaces.Members(ctx, caller)
	if err != nil {
		return nil, err
	}
	out := api.ListMembers200JSONResponse{Data: make([]api.Member, len(ms)), TotalCount: len(ms)}
	for i, m := range ms {
		out.Data[i] = memberOf(m)
	}
	return out, nil
}

// GetMember implements api.StrictServerInterface.
func (s *Server) GetMember(ctx context.Context, req api.GetMemberRequestObject) (api.GetMemberResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	m, err := s.workspaces.Member(ctx, caller, req.MemberId)
	if err != nil {
		return nil, err
	}
	return api.GetMember200JSONResponse{Data: memberOf(m)}, nil
}

// CreateMember implements api.StrictServerInterface.
func (s *Server) CreateMember(ctx context.Context, req api.CreateMemberRequestObject) (api.CreateMemberResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	b := req.Body
	m, err := s.workspaces.CreateMember(ctx, caller, workspaces.NewMember{Name: b.Name, Email: deref(b.Email), Role: string(b.Role)})
	if err != nil {
		return nil, err
	}
	return api.CreateMember201JSONResponse{Data: memberOf(m)}, nil
}

// UpdateMember implements api.StrictServerInterface.
func (s *Server) UpdateMember(ctx context.Context, req api.UpdateMemberRequestObject) (api.UpdateMemberResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	b := req.Body
	m, err := s.workspaces.UpdateMember(ctx, caller, req.MemberId, workspaces.MemberChange{Name: b.Name, Email: b.Email, Role: (*string)(b.Role)})
	if err != nil {
		return nil, err
	}
	return api.UpdateMember200JSONResponse{Data: memberOf(m)}, nil
}

// DeleteMember implements api.StrictServerInterface.
func (s *Server) DeleteMember(ctx context.Context, req api.DeleteMemberRequestObject) (api.DeleteMemberResponseObject, error) {
	caller, err := inWorkspace(ctx, req.WorkspaceId)
	if err != nil {
		return nil, err
	}
	if err := s.workspaces.DeleteMember(ctx, caller, req.MemberId); err != nil {
		return nil, err
	}
	return api.DeleteMember204Response{}, nil
}
