package server

import (
	"context"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/catalog"
)

// ListModels implements api.StrictServerInterface: the models the caller's
// workspace can route to, in OpenRouter's shape.
func (s *Server) ListModels(ctx context.Context, _ api.ListModelsRequestObject) (api.ListModelsResponseObject, error) {
	k := callerKey(ctx)
	ms, err := s.models.Routable(ctx, k.WorkspaceID)
	if err != nil {
		return nil, err
	}
	out := api.ModelList{Data: make([]api.Model, len(ms))}
	for i, m := range ms {
		out.Data[i] = modelOf(m)
	}
	return api.ListModels200JSONResponse(out), nil
}

func modelOf(m *catalog.Model) api.Model {
	top := m.Endpoints[0]
	out := api.Model{
		Id: m.ID, CanonicalSlug: &m.ID, Name: m.Name, Created: m.Created, ContextLength: m.ContextLength,
		Pricing: api.Pricing{
			Prompt: top.Pricing.Prompt.String(), Completion: top.Pricing.Completion.String(),
			Request: ptrTo(top.Pricing.Request.String()),
		},
		SupportedParameters: top.SupportedParameters,
	}
	if m.Description != "" {
		out.Description = &m.Description
	}
	if m.Tokenizer != "" {
		out.Architecture.Tokenizer = &m.Tokenizer
	}
	out.Architecture.InputModalities = m.InputModalities
	out.Architecture.OutputModalities = m.OutputModalities
	out.Architecture.Modality = modality(m)
	out.TopProvider.ContextLength = top.ContextLength
	if top.MaxCompletionTokens > 0 {
		out.TopProvider.MaxCompletionTokens = ptrTo(top.MaxCompletionTokens)
	}
	if out.SupportedParameters == nil {
		out.SupportedParameters = []string{}
	}
	return out
}

func modality(m *catalog.Model) string {
	join := func(xs []string) string {
		s := ""
		for i, x := range xs {
			if i > 0 {
				s += "+"
			}
			s += x
		}
		return s
	}
	return join(m.InputModalities) + "->" + join(m.OutputModalities)
}

func ptrTo[T any](v T) *T { return &v }
