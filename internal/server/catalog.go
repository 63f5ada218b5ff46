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
	for i, o := range ms {
		out.Data[i] = modelOf(o.Model, o.Endpoint)
	}
	return api.ListModels200JSONResponse(out), nil
}

// modelOf shows a model with the endpoint the caller would be routed to
// first (its pricing and limits).
func modelOf(m *catalog.Model, top catalog.Endpoint) api.Model {
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
	out.Architecture.InputModalities = orText(m.InputModalities)
	out.Architecture.OutputModalities = orText(m.OutputModalities)
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

// orText defaults a model's modalities to text, which every model handles.
func orText(ms []string) []string {
	if len(ms) == 0 {
		return []string{"text"}
	}
	return ms
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
	return join(orText(m.InputModalities)) + "->" + join(orText(m.OutputModalities))
}

func ptrTo[T any](v T) *T { return &v }
