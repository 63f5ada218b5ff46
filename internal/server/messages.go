package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/attribution"
	"github.com/perpetuo/perpetuo/internal/gateway"
	"github.com/perpetuo/perpetuo/internal/skins"
	"github.com/perpetuo/perpetuo/internal/sse"
)

// CreateMessage implements api.StrictServerInterface: Anthropic's Messages
// API, translated to the chat completion the gateway serves and back.
func (s *Server) CreateMessage(ctx context.Context, req api.CreateMessageRequestObject) (api.CreateMessageResponseObject, error) {
	b := req.Body
	user := ""
	if b.Metadata != nil {
		user = deref(b.Metadata.UserId)
	}
	caller, greq, err := s.skinned(ctx, skins.MessagesToChat, &api.ChatCompletionRequest{Model: b.Model, Models: b.Models,
		Provider: b.Provider, Strategy: b.Strategy, SessionId: b.SessionId, User: &user, MaxTokens: &b.MaxTokens, Stream: b.Stream})
	if err != nil {
		return nil, err
	}
	if !greq.Stream {
		resp, err := s.skinnedComplete(ctx, caller, greq, skins.ChatToMessage)
		if err != nil {
			return nil, err
		}
		return jsonMessage{jsonCompletion{resp}}, nil
	}
	return streamMessage{ctx: ctx, s: s, caller: caller, req: greq}, nil
}

// CreateResponse implements api.StrictServerInterface: OpenAI's Responses
// API (stateless), translated to the chat completion the gateway serves
// and back.
func (s *Server) CreateResponse(ctx context.Context, req api.CreateResponseRequestObject) (api.CreateResponseResponseObject, error) {
	b := req.Body
	caller, greq, err := s.skinned(ctx, skins.ResponsesToChat, &api.ChatCompletionRequest{Model: b.Model, Models: b.Models,
		Provider: b.Provider, Strategy: b.Strategy, SessionId: b.SessionId, User: b.User, MaxTokens: b.MaxOutputTokens,
		Stream: b.Stream, Metadata: b.Metadata})
	if err != nil {
		return nil, err
	}
	if !greq.Stream {
		resp, err := s.skinnedComplete(ctx, caller, greq, skins.ChatToResponse)
		if err != nil {
			return nil, err
		}
		return jsonResponse{jsonCompletion{resp}}, nil
	}
	return streamResponse{ctx: ctx, s: s, caller: caller, req: greq}, nil
}

// skinned translates another API's request body with toChat and prepares
// the gateway's request from the chat completion fields it maps to.
func (s *Server) skinned(ctx context.Context, toChat func([]byte) ([]byte, error), b *api.ChatCompletionRequest) (gateway.Caller, gateway.Request, error) {
	models := chatModels(b)
	if len(models) == 0 {
		return gateway.Caller{}, gateway.Request{}, apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"Set 'model' (e.g. \"mock/echo\") or 'models'; GET /v1/models lists what you can use.").With("field", "/model")
	}
	body, err := toChat(rawBody(ctx))
	if err != nil {
		var se *skins.Error
		if errors.As(err, &se) {
			err = apierr.New(http.StatusBadRequest, apierr.InvalidRequest, "Invalid request: %s at %s.", se.Rule, se.Field).With("field", se.Field)
		}
		return gateway.Caller{}, gateway.Request{}, err
	}
	k := callerKey(ctx)
	pol, err := s.policies.For(ctx, k)
	if err != nil {
		return gateway.Caller{}, gateway.Request{}, err
	}
	prefs, err := prefsOf(b.Provider)
	if err != nil {
		return gateway.Caller{}, gateway.Request{}, err
	}
	caller := gateway.Caller{KeyID: k.ID, WorkspaceID: k.WorkspaceID, MemberID: k.MemberID, Policy: pol}
	return caller, gateway.Request{
		Body: body, Models: models, Stream: deref(b.Stream), MaxTokens: deref(b.MaxTokens), NonText: nonText(body),
		Prefs: prefs, Strategy: string(deref(b.Strategy)), User: deref(b.User), SessionID: deref(b.SessionId),
		App: attribution.FromHeaders(stateOf(ctx).headers), Metadata: deref(b.Metadata),
	}, nil
}

// skinnedComplete serves a non-streaming skinned request, its answer
// translated by fromChat.
func (s *Server) skinnedComplete(ctx context.Context, caller gateway.Caller, greq gateway.Request, fromChat func([]byte) ([]byte, error)) (*gateway.Response, error) {
	resp, err := s.gateway.Complete(ctx, caller, greq)
	if err != nil {
		return nil, err
	}
	if resp.Body, err = fromChat(resp.Body); err != nil {
		return nil, err
	}
	return resp, nil
}

// jsonMessage writes a finished message as a completion is written.
type jsonMessage struct{ jsonCompletion }

func (m jsonMessage) VisitCreateMessageResponse(w http.ResponseWriter) error {
	return m.VisitCreateChatCompletionResponse(w)
}

// streamMessage serves a message stream as Anthropic's events.
type streamMessage struct {
	ctx    context.Context
	s      *Server
	caller gateway.Caller
	req    gateway.Request
}

func (m streamMessage) VisitCreateMessageResponse(w http.ResponseWriter) error {
	return m.s.stream(m.ctx, w, m.caller, m.req, func(out *sseWriter) gateway.ChunkWriter { return skins.NewMessageStream(out) })
}

// jsonResponse writes a finished response as a completion is written.
type jsonResponse struct{ jsonCompletion }

func (m jsonResponse) VisitCreateResponseResponse(w http.ResponseWriter) error {
	return m.VisitCreateChatCompletionResponse(w)
}

// streamResponse serves a response stream as the Responses API's events.
type streamResponse struct {
	ctx    context.Context
	s      *Server
	caller gateway.Caller
	req    gateway.Request
}

func (m streamResponse) VisitCreateResponseResponse(w http.ResponseWriter) error {
	return m.s.stream(m.ctx, w, m.caller, m.req, func(out *sseWriter) gateway.ChunkWriter { return skins.NewResponseStream(out) })
}

// WriteEvent writes one named event (Anthropic's streams name each).
func (s *sseWriter) WriteEvent(name string, data []byte) error {
	var err error
	if s.buf, err = sse.AppendEvent(s.buf[:0], sse.Event{Event: name, Data: data}); err != nil {
		return err
	}
	return s.write()
}

// anthropicEnvelope is the envelope with Anthropic's top-level type.
func anthropicEnvelope(envelope []byte) []byte {
	return append([]byte(`{"type":"error",`), envelope[1:]...)
}

// apiKeyHeader returns the x-api-key key of operations that accept it.
func apiKeyHeader(r *http.Request, ri routeInfo) string {
	if sec := ri.route.Operation.Security; sec != nil {
		for _, req := range *sec {
			if _, ok := req["anthropicApiKey"]; ok {
				return strings.TrimSpace(r.Header.Get("x-api-key"))
			}
		}
	}
	return ""
}

// anthropicShaped reports whether r's errors take Anthropic's top-level
// "type": "error" besides the envelope, which Anthropic SDKs read.
func anthropicShaped(r *http.Request) bool {
	ri, ok := routeOf(r.Context())
	return ok && strings.EqualFold(ri.route.Operation.OperationID, "createMessage") // the served spec's ids are exported names
}
