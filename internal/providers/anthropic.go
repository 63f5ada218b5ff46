package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/httpx"
	"github.com/perpetuo/perpetuo/internal/sse"
)

// anthropicVersion is the Messages API version Perpetuo speaks.
const anthropicVersion = "2023-06-01"

// Anthropic speaks Anthropic's Messages API, translating OpenAI Chat
// Completions requests to it and its answers (and stream events) back.
type Anthropic struct {
	trusted, guarded *http.Client
	now              func() time.Time
}

// NewAnthropic returns the Anthropic adapter, with the clients as for
// NewOpenAI.
func NewAnthropic(trusted, guarded *http.Client) *Anthropic {
	return &Anthropic{trusted: trusted, guarded: guarded, now: time.Now}
}

func (a *Anthropic) do(ctx context.Context, c Call) (*http.Response, error) {
	url, err := endpointURL(c.BaseURL, "/messages")
	if err != nil {
		return nil, &Error{Client: misconfigured(c.Provider), Retryable: true, Class: NotSent}
	}
	body, err := anthropicBody(c)
	if err != nil {
		return nil, &Error{Client: untranslatable(c.Provider, err), Class: NotSent}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Client: misconfigured(c.Provider).WithCause(err), Retryable: true, Class: NotSent}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-version", anthropicVersion)
	if c.Stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if c.APIKey != "" {
		req.Header.Set("x-api-key", c.APIKey)
	}
	return send(ctx, c, a.trusted, a.guarded, req)
}

// Complete implements Adapter.
func (a *Anthropic) Complete(ctx context.Context, c Call) (*Completion, error) {
	c.Stream = false
	resp, err := a.do(ctx, c)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := httpx.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody), min(resp.ContentLength, maxUpstreamBody))
	if err != nil {
		return nil, answerError(ctx, c.Provider, resp.StatusCode, fmt.Errorf("read response: %w", err))
	}
	var m anMessageResponse
	if err := json.Unmarshal(b, &m); err != nil || m.Type != "message" {
		return nil, Malformed(c.Provider, resp.StatusCode)
	}
	msg := oaMessageOut{Role: "assistant"}
	var text strings.Builder
	for _, bl := range m.Content {
		switch bl.Type {
		case "text":
			text.WriteString(bl.Text)
		case "thinking":
			msg.Reasoning += bl.Thinking
			msg.ReasoningDetails = append(msg.ReasoningDetails, reasoningDetail{Type: "reasoning.text", Text: bl.Thinking,
				Signature: bl.Signature, Format: anthropicFormat, Index: len(msg.ReasoningDetails)})
		case "redacted_thinking":
			msg.ReasoningDetails = append(msg.ReasoningDetails, reasoningDetail{Type: "reasoning.encrypted", Data: bl.Data,
				Format: anthropicFormat, Index: len(msg.ReasoningDetails)})
		case "tool_use":
			msg.ToolCalls = append(msg.ToolCalls, oaToolCall{ID: bl.ID, Type: "function", Index: len(msg.ToolCalls),
				Function: oaFunctionCall{Name: bl.Name, Arguments: string(orEmptyObject(bl.Input))}})
		}
	}
	if text.Len() > 0 || len(msg.ToolCalls) == 0 {
		s := text.String()
		msg.Content = &s
	}
	finish := anthropicFinish(m.StopReason)
	u := m.Usage.usage()
	out := oaCompletion{ID: m.ID, Object: "chat.completion", Created: a.now().Unix(), Model: m.Model,
		Choices: []oaChoice{{Index: 0, Message: &msg, FinishReason: &finish, NativeFinishReason: m.StopReason}},
		Usage:   u.openAI()}
	body, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("render completion: %w", err)
	}
	return &Completion{Body: body, Usage: u, HasUsage: true, UpstreamID: m.ID, FinishReason: finish}, nil
}

// Stream implements Adapter.
func (a *Anthropic) Stream(ctx context.Context, c Call) (Stream, error) {
	c.Stream = true
	resp, err := a.do(ctx, c)
	if err != nil {
		return nil, err
	}
	c.Body = nil
	return &anthropicStream{ctx: ctx, call: c, status: resp.StatusCode, body: &streamBody{rc: resp.Body}, r: sse.NewReader(resp.Body),
		created: a.now().Unix()}, nil
}

// send makes the request with the client c calls for (guarded for a
// workspace's base URL) and classifies any failure status.
func send(ctx context.Context, c Call, trusted, guarded *http.Client, req *http.Request) (*http.Response, error) {
	client := trusted
	if c.Untrusted {
		client = guarded
	}
	if client == nil {
		return nil, &Error{Client: misconfigured(c.Provider), Retryable: true, Class: NotSent}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, transportError(ctx, c.Provider, err)
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return nil, classifyStatus(c, resp.StatusCode, resp.Header, b)
	}
	return resp, nil
}

// anthropicFormat names Anthropic's reasoning in reasoning_details, as
// OpenRouter does, so a client can send it back to the same family.
const anthropicFormat = "anthropic-claude-v1"

// anthropicFinish maps Anthropic's stop_reason to OpenAI's finish_reason.
func anthropicFinish(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	default: // end_turn, stop_sequence, pause_turn
		return "stop"
	}
}

// anthropicErrorStatus is the HTTP status Anthropic gives each error type,
// for errors that arrive inside a stream (where the status was 200).
func anthropicErrorStatus(typ string) int {
	switch typ {
	case "invalid_request_error":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error":
		return http.StatusTooManyRequests
	case "overloaded_error":
		return 529
	case "timeout_error":
		return http.StatusGatewayTimeout
	default: // api_error
		return http.StatusInternalServerError
	}
}

// anUsage is Anthropic's usage: input_tokens exclude the cached ones.
type anUsage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// usage converts to OpenAI's convention: prompt tokens include both cache
// classes. Anthropic does not count thinking tokens apart (they are in
// output_tokens).
func (u anUsage) usage() Usage {
	return Usage{
		PromptTokens:     u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens,
		CompletionTokens: u.OutputTokens,
		CachedTokens:     u.CacheReadInputTokens,
		CacheWriteTokens: u.CacheCreationInputTokens,
	}
}

type anMessageResponse struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Model      string    `json:"model"`
	Content    []anBlock `json:"content"`
	StopReason string    `json:"stop_reason"`
	Usage      anUsage   `json:"usage"`
}

// The OpenAI shapes the adapter renders.
type (
	oaCompletion struct {
		ID      string     `json:"id"`
		Object  string     `json:"object"`
		Created int64      `json:"created"`
		Model   string     `json:"model"`
		Choices []oaChoice `json:"choices"`
		Usage   *oaUsage   `json:"usage,omitempty"`
	}
	oaChoice struct {
		Index              int           `json:"index"`
		Message            *oaMessageOut `json:"message,omitempty"`
		Delta              *oaMessageOut `json:"delta,omitempty"`
		FinishReason       *string       `json:"finish_reason"`
		NativeFinishReason string        `json:"native_finish_reason,omitempty"`
	}
	oaMessageOut struct {
		Role             string            `json:"role,omitempty"`
		Content          *string           `json:"content,omitempty"`
		Reasoning        string            `json:"reasoning,omitempty"`
		ReasoningDetails []reasoningDetail `json:"reasoning_details,omitempty"`
		ToolCalls        []oaToolCall      `json:"tool_calls,omitempty"`
	}
	oaToolCall struct {
		Index    int            `json:"index"`
		ID       string         `json:"id,omitempty"`
		Type     string         `json:"type,omitempty"`
		Function oaFunctionCall `json:"function"`
	}
	oaFunctionCall struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	}
	reasoningDetail struct {
		Type      string `json:"type"`
		Text      string `json:"text,omitempty"`
		Signature string `json:"signature,omitempty"`
		Data      string `json:"data,omitempty"`
		Format    string `json:"format,omitempty"`
		Index     int    `json:"index"`
	}
	oaUsage struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		TotalTokens         int `json:"total_tokens"`
		PromptTokensDetails struct {
			CachedTokens     int `json:"cached_tokens"`
			CacheWriteTokens int `json:"cache_write_tokens"`
		} `json:"prompt_tokens_details"`
		CompletionTokensDetails struct {
			ReasoningTokens int `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
	}
)

// openAI renders u as OpenAI's usage object (which ParseUsage reads).
func (u Usage) openAI() *oaUsage {
	o := &oaUsage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.PromptTokens + u.CompletionTokens}
	o.PromptTokensDetails.CachedTokens, o.PromptTokensDetails.CacheWriteTokens = u.CachedTokens, u.CacheWriteTokens
	o.CompletionTokensDetails.ReasoningTokens = u.ReasoningTokens
	return o
}

func orEmptyObject(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return json.RawMessage("{}")
	}
	return raw
}

// anthropicStream turns Anthropic's stream events into chat.completion.chunk
// documents: message_start opens (role), deltas become content, reasoning
// or tool-call deltas, message_delta finishes, message_stop brings the
// usage chunk and then io.EOF.
type anthropicStream struct {
	ctx     context.Context
	call    Call
	status  int
	body    *streamBody
	r       *sse.Reader
	created int64

	id, model string
	usage     anUsage
	tools     map[int]int // content block index → tool call index
	reasoning int         // reasoning_details emitted
	stopped   bool        // message_stop seen: next is io.EOF
}

func (s *anthropicStream) Ready() bool  { return s.r.Ready() }
func (s *anthropicStream) Close() error { return s.body.Close() }

// anEvent is the union of Anthropic's stream event payloads.
type anEvent struct {
	Type    string `json:"type"`
	Index   int    `json:"index"`
	Message *struct {
		ID    string  `json:"id"`
		Model string  `json:"model"`
		Usage anUsage `json:"usage"`
	} `json:"message"`
	ContentBlock *anBlock `json:"content_block"`
	Delta        *struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Thinking    string `json:"thinking"`
		Signature   string `json:"signature"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
	} `json:"delta"`
	Usage *struct {
		OutputTokens             *int `json:"output_tokens"`
		InputTokens              *int `json:"input_tokens"`
		CacheCreationInputTokens *int `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     *int `json:"cache_read_input_tokens"`
	} `json:"usage"`
}

// Next implements Stream.
func (s *anthropicStream) Next() ([]byte, error) {
	for {
		if s.stopped {
			return nil, io.EOF
		}
		ev, err := s.r.Next()
		if err == io.EOF {
			return nil, answerError(s.ctx, s.call.Provider, s.status, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return nil, answerError(s.ctx, s.call.Provider, s.status, err)
		}
		if len(ev.Data) == 0 {
			continue
		}
		var e anEvent
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			return nil, Malformed(s.call.Provider, s.status)
		}
		chunk, err := s.translate(e, ev.Data)
		if err != nil || chunk != nil {
			return chunk, err
		}
	}
}

// translate is one event's chunk, or nil for an event with nothing to
// relay (ping, block boundaries).
func (s *anthropicStream) translate(e anEvent, raw []byte) ([]byte, error) {
	switch e.Type {
	case "message_start":
		if e.Message == nil {
			return nil, Malformed(s.call.Provider, s.status)
		}
		s.id, s.model, s.usage = e.Message.ID, e.Message.Model, e.Message.Usage
		empty := ""
		return s.chunk(oaMessageOut{Role: "assistant", Content: &empty}, nil, "")
	case "content_block_start":
		b := e.ContentBlock
		if b == nil {
			return nil, nil
		}
		switch b.Type {
		case "tool_use":
			if s.tools == nil {
				s.tools = map[int]int{}
			}
			k := len(s.tools)
			s.tools[e.Index] = k
			return s.chunk(oaMessageOut{ToolCalls: []oaToolCall{{Index: k, ID: b.ID, Type: "function",
				Function: oaFunctionCall{Name: b.Name}}}}, nil, "")
		case "redacted_thinking":
			return s.chunk(oaMessageOut{ReasoningDetails: []reasoningDetail{s.detail(reasoningDetail{Type: "reasoning.encrypted", Data: b.Data})}}, nil, "")
		case "text":
			if b.Text != "" {
				return s.chunk(oaMessageOut{Content: &b.Text}, nil, "")
			}
		}
		return nil, nil
	case "content_block_delta":
		d := e.Delta
		if d == nil {
			return nil, nil
		}
		switch d.Type {
		case "text_delta":
			return s.chunk(oaMessageOut{Content: &d.Text}, nil, "")
		case "thinking_delta":
			return s.chunk(oaMessageOut{Reasoning: d.Thinking, ReasoningDetails: []reasoningDetail{
				s.detail(reasoningDetail{Type: "reasoning.text", Text: d.Thinking})}}, nil, "")
		case "signature_delta":
			return s.chunk(oaMessageOut{ReasoningDetails: []reasoningDetail{
				s.detail(reasoningDetail{Type: "reasoning.text", Signature: d.Signature})}}, nil, "")
		case "input_json_delta":
			k, ok := s.tools[e.Index]
			if !ok || d.PartialJSON == "" {
				return nil, nil
			}
			return s.chunk(oaMessageOut{ToolCalls: []oaToolCall{{Index: k, Function: oaFunctionCall{Arguments: d.PartialJSON}}}}, nil, "")
		}
		return nil, nil
	case "message_delta":
		if u := e.Usage; u != nil {
			set := func(dst *int, v *int) {
				if v != nil {
					*dst = *v
				}
			}
			// Cumulative counts; input ones may be restated here.
			set(&s.usage.OutputTokens, u.OutputTokens)
			set(&s.usage.InputTokens, u.InputTokens)
			set(&s.usage.CacheCreationInputTokens, u.CacheCreationInputTokens)
			set(&s.usage.CacheReadInputTokens, u.CacheReadInputTokens)
		}
		if e.Delta == nil || e.Delta.StopReason == "" {
			return nil, nil
		}
		finish := anthropicFinish(e.Delta.StopReason)
		return s.chunk(oaMessageOut{}, &finish, e.Delta.StopReason)
	case "message_stop":
		s.stopped = true
		s.body.ended = true
		return s.usageChunk()
	case "error":
		// Inside a 200 stream: classified by the status Anthropic gives
		// the error's type.
		e := classifyStatus(s.call, anthropicErrorStatus(gjson.GetBytes(raw, "error.type").String()), http.Header{}, raw)
		e.Status = http.StatusOK
		return nil, e
	default: // ping, content_block_stop, and events added later
		return nil, nil
	}
}

// detail numbers a reasoning_details entry: each thinking block's text and
// signature share one index, as OpenRouter streams them.
func (s *anthropicStream) detail(d reasoningDetail) reasoningDetail {
	d.Format, d.Index = anthropicFormat, s.reasoning
	if d.Signature != "" || d.Data != "" {
		s.reasoning++ // a signature or redacted block closes the entry
	}
	return d
}

func (s *anthropicStream) chunk(delta oaMessageOut, finish *string, native string) ([]byte, error) {
	c := oaCompletion{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model,
		Choices: []oaChoice{{Index: 0, Delta: &delta, FinishReason: finish, NativeFinishReason: native}}}
	return json.Marshal(c)
}

// usageChunk is OpenAI's last, usage-only chunk.
func (s *anthropicStream) usageChunk() ([]byte, error) {
	c := oaCompletion{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model,
		Choices: []oaChoice{}, Usage: s.usage.usage().openAI()}
	return json.Marshal(c)
}
