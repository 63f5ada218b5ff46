package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/httpx"
	"github.com/perpetuo/perpetuo/internal/jsonedit"
	"github.com/perpetuo/perpetuo/internal/sse"
)

// Gemini speaks Google's Gemini API (generateContent and
// streamGenerateContent?alt=sse), translating OpenAI Chat Completions
// requests to it and its answers back.
type Gemini struct {
	trusted, guarded *http.Client
	now              func() time.Time
}

// NewGemini returns the Gemini adapter, with the clients as for NewOpenAI.
func NewGemini(trusted, guarded *http.Client) *Gemini {
	return &Gemini{trusted: trusted, guarded: guarded, now: time.Now}
}

// geminiFormat names Gemini's reasoning in reasoning_details.
const geminiFormat = "google-gemini-v1"

func (g *Gemini) do(ctx context.Context, c Call) (*http.Response, error) {
	method := ":generateContent"
	if c.Stream {
		method = ":streamGenerateContent"
	}
	u, err := endpointURL(c.BaseURL, "/models/"+url.PathEscape(c.UpstreamModel)+method)
	if err != nil {
		return nil, &Error{Client: misconfigured(c.Provider), Retryable: true, Class: NotSent}
	}
	if c.Stream {
		pu, _ := url.Parse(u)
		q := pu.Query()
		q.Set("alt", "sse")
		pu.RawQuery = q.Encode()
		u = pu.String()
	}
	body, err := geminiBody(c)
	if err != nil {
		return nil, &Error{Client: untranslatable(c.Provider, err), Class: NotSent}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Client: misconfigured(c.Provider).WithCause(err), Retryable: true, Class: NotSent}
	}
	req.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		req.Header.Set("x-goog-api-key", c.APIKey)
	}
	return send(ctx, c, g.trusted, g.guarded, req)
}

// Complete implements Adapter.
func (g *Gemini) Complete(ctx context.Context, c Call) (*Completion, error) {
	c.Stream = false
	resp, err := g.do(ctx, c)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := httpx.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody), min(resp.ContentLength, maxUpstreamBody))
	if err != nil {
		return nil, answerError(ctx, c.Provider, resp.StatusCode, fmt.Errorf("read response: %w", err))
	}
	var r gmResponse
	if err := json.Unmarshal(b, &r); err != nil || (r.Candidates == nil && r.PromptFeedback == nil) {
		return nil, Malformed(c.Provider, resp.StatusCode)
	}
	id := cmpOr(r.ResponseID, "gen-"+fmt.Sprint(g.now().UnixNano()))
	msg, finish, native := oaMessageOut{Role: "assistant"}, "content_filter", ""
	if r.PromptFeedback != nil {
		native = r.PromptFeedback.BlockReason
	}
	if len(r.Candidates) > 0 {
		cand := r.Candidates[0]
		var text strings.Builder
		for i, p := range cand.Content.Parts {
			switch {
			case p.FunctionCall != nil:
				msg.ToolCalls = append(msg.ToolCalls, oaToolCall{ID: geminiCallID(id, i), Type: "function", Index: len(msg.ToolCalls),
					Function: oaFunctionCall{Name: p.FunctionCall.Name, Arguments: string(orEmptyObject(p.FunctionCall.Args))}})
			case p.Thought:
				msg.Reasoning += p.Text
				msg.ReasoningDetails = append(msg.ReasoningDetails, reasoningDetail{Type: "reasoning.text", Text: p.Text,
					Format: geminiFormat, Index: len(msg.ReasoningDetails)})
			default:
				text.WriteString(p.Text)
			}
		}
		if text.Len() > 0 || len(msg.ToolCalls) == 0 {
			s := text.String()
			msg.Content = &s
		}
		finish, native = geminiFinish(cand.FinishReason, len(msg.ToolCalls) > 0), cand.FinishReason
	}
	u := r.UsageMetadata.usage()
	out := oaCompletion{ID: id, Object: "chat.completion", Created: g.now().Unix(), Model: cmpOr(r.ModelVersion, c.UpstreamModel),
		Choices: []oaChoice{{Index: 0, Message: &msg, FinishReason: &finish, NativeFinishReason: native}}, Usage: u.openAI()}
	body, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("render completion: %w", err)
	}
	return &Completion{Body: body, Usage: u, HasUsage: r.UsageMetadata != nil, UpstreamID: id, FinishReason: finish}, nil
}

// Stream implements Adapter.
func (g *Gemini) Stream(ctx context.Context, c Call) (Stream, error) {
	c.Stream = true
	resp, err := g.do(ctx, c)
	if err != nil {
		return nil, err
	}
	c.Body = nil
	return &geminiStream{ctx: ctx, call: c, status: resp.StatusCode, body: resp.Body, r: sse.NewReader(resp.Body),
		created: g.now().Unix(), fallbackID: "gen-" + fmt.Sprint(g.now().UnixNano())}, nil
}

// geminiCallID names function call i of response id: Gemini gives calls
// no ids, OpenAI clients need one to answer them.
func geminiCallID(id string, i int) string { return fmt.Sprintf("call_%s_%d", id, i) }

// geminiFinish maps Gemini's finishReason to OpenAI's.
func geminiFinish(reason string, calls bool) string {
	switch reason {
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return "content_filter"
	case "MALFORMED_FUNCTION_CALL":
		return "error"
	}
	if calls {
		return "tool_calls"
	}
	return "stop"
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type (
	gmResponse struct {
		Candidates []struct {
			Content struct {
				Parts []gmPart `json:"parts"`
			} `json:"content"`
			FinishReason string `json:"finishReason"`
		} `json:"candidates"`
		PromptFeedback *struct {
			BlockReason string `json:"blockReason"`
		} `json:"promptFeedback"`
		UsageMetadata *gmUsage `json:"usageMetadata"`
		ModelVersion  string   `json:"modelVersion"`
		ResponseID    string   `json:"responseId"`
	}
	gmUsage struct {
		PromptTokenCount        int `json:"promptTokenCount"`
		CandidatesTokenCount    int `json:"candidatesTokenCount"`
		CachedContentTokenCount int `json:"cachedContentTokenCount"`
		ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
	}
	gmPart struct {
		Text       string `json:"text,omitempty"`
		Thought    bool   `json:"thought,omitempty"`
		InlineData *struct {
			MimeType string `json:"mimeType"`
			Data     string `json:"data"`
		} `json:"inlineData,omitempty"`
		FileData *struct {
			MimeType string `json:"mimeType,omitempty"`
			FileURI  string `json:"fileUri"`
		} `json:"fileData,omitempty"`
		FunctionCall *struct {
			Name string          `json:"name"`
			Args json.RawMessage `json:"args,omitempty"`
		} `json:"functionCall,omitempty"`
		FunctionResponse *struct {
			Name     string          `json:"name"`
			Response json.RawMessage `json:"response"`
		} `json:"functionResponse,omitempty"`
	}
)

// usage converts to OpenAI's convention: Gemini's prompt count already
// includes the cached tokens, but its candidates exclude the thoughts.
func (u *gmUsage) usage() Usage {
	if u == nil {
		return Usage{}
	}
	return Usage{
		PromptTokens:     u.PromptTokenCount,
		CompletionTokens: u.CandidatesTokenCount + u.ThoughtsTokenCount,
		ReasoningTokens:  u.ThoughtsTokenCount,
		CachedTokens:     u.CachedContentTokenCount,
	}
}

// geminiStream turns Gemini's streamed responses (each a partial
// GenerateContentResponse) into chunks; the one carrying a finishReason
// ends the answer, and the usage chunk follows it. Gemini sends no [DONE]:
// the stream's end after a finish is its end, before one a cut.
type geminiStream struct {
	ctx        context.Context
	call       Call
	status     int
	body       io.ReadCloser
	r          *sse.Reader
	created    int64
	fallbackID string

	id       string
	model    string
	usage    *gmUsage
	calls    int
	started  bool // a chunk went out (the first carries the role)
	finished bool // a finishReason arrived
	done     bool // the usage chunk went out
}

func (s *geminiStream) Ready() bool  { return s.r.Ready() }
func (s *geminiStream) Close() error { return s.body.Close() }

// Next implements Stream.
func (s *geminiStream) Next() ([]byte, error) {
	for {
		if s.done {
			return nil, io.EOF
		}
		ev, err := s.r.Next()
		if err == io.EOF && s.finished {
			s.done = true
			return s.usageChunk(), nil
		}
		if err == io.EOF {
			return nil, answerError(s.ctx, s.call.Provider, s.status, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return nil, answerError(s.ctx, s.call.Provider, s.status, err)
		}
		if len(ev.Data) == 0 {
			continue
		}
		if e := gjson.GetBytes(ev.Data, "error"); e.Exists() {
			return nil, inStreamError(s.call, ev.Data)
		}
		var r gmResponse
		if err := json.Unmarshal(ev.Data, &r); err != nil {
			return nil, Malformed(s.call.Provider, s.status)
		}
		if chunk := s.translate(r); chunk != nil {
			return chunk, nil
		}
	}
}

func (s *geminiStream) translate(r gmResponse) []byte {
	if s.id == "" {
		s.id, s.model = cmpOr(r.ResponseID, s.fallbackID), cmpOr(r.ModelVersion, s.call.UpstreamModel)
	}
	if r.UsageMetadata != nil {
		s.usage = r.UsageMetadata
	}
	delta := oaMessageOut{}
	if !s.started {
		delta.Role = "assistant"
	}
	var finish *string
	native := ""
	if r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
		f := "content_filter"
		finish, native = &f, r.PromptFeedback.BlockReason
	}
	var text strings.Builder
	if len(r.Candidates) > 0 {
		cand := r.Candidates[0]
		for _, p := range cand.Content.Parts {
			switch {
			case p.FunctionCall != nil:
				delta.ToolCalls = append(delta.ToolCalls, oaToolCall{Index: s.calls, ID: geminiCallID(s.id, s.calls), Type: "function",
					Function: oaFunctionCall{Name: p.FunctionCall.Name, Arguments: string(orEmptyObject(p.FunctionCall.Args))}})
				s.calls++
			case p.Thought:
				delta.Reasoning += p.Text
				delta.ReasoningDetails = append(delta.ReasoningDetails, reasoningDetail{Type: "reasoning.text", Text: p.Text, Format: geminiFormat})
			default:
				text.WriteString(p.Text)
			}
		}
		if cand.FinishReason != "" {
			f := geminiFinish(cand.FinishReason, s.calls > 0)
			finish, native = &f, cand.FinishReason
		}
	}
	if text.Len() > 0 {
		t := text.String()
		delta.Content = &t
	}
	if finish != nil {
		s.finished = true
	}
	if delta.Content == nil && delta.Reasoning == "" && delta.ToolCalls == nil && finish == nil {
		return nil
	}
	s.started = true
	c := oaCompletion{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model,
		Choices: []oaChoice{{Index: 0, Delta: &delta, FinishReason: finish, NativeFinishReason: native}}}
	b, _ := json.Marshal(c)
	return b
}

func (s *geminiStream) usageChunk() []byte {
	c := oaCompletion{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model,
		Choices: []oaChoice{}, Usage: s.usage.usage().openAI()}
	b, _ := json.Marshal(c)
	return b
}

// The Gemini request.
type (
	gmRequest struct {
		Contents          []gmContent     `json:"contents"`
		SystemInstruction *gmContent      `json:"systemInstruction,omitempty"`
		Tools             []gmTool        `json:"tools,omitempty"`
		ToolConfig        *gmToolConfig   `json:"toolConfig,omitempty"`
		GenerationConfig  gmGenerationCfg `json:"generationConfig"`
	}
	gmContent struct {
		Role  string   `json:"role,omitempty"`
		Parts []gmPart `json:"parts"`
	}
	gmTool struct {
		FunctionDeclarations []gmFunction `json:"functionDeclarations"`
	}
	gmFunction struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	}
	gmToolConfig struct {
		FunctionCallingConfig struct {
			Mode                 string   `json:"mode"`
			AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
		} `json:"functionCallingConfig"`
	}
	gmGenerationCfg struct {
		Temperature     *float64          `json:"temperature,omitempty"`
		TopP            *float64          `json:"topP,omitempty"`
		TopK            *int              `json:"topK,omitempty"`
		MaxOutputTokens int               `json:"maxOutputTokens,omitempty"`
		StopSequences   []string          `json:"stopSequences,omitempty"`
		ThinkingConfig  *gmThinkingConfig `json:"thinkingConfig,omitempty"`
	}
	gmThinkingConfig struct {
		ThinkingBudget  int  `json:"thinkingBudget"`
		IncludeThoughts bool `json:"includeThoughts"`
	}
)

// geminiBody translates c's OpenAI request (with the gateway's edits
// applied) into a generateContent request.
func geminiBody(c Call) ([]byte, error) {
	body := c.Body
	if len(c.Edits) > 0 {
		var err error
		if body, err = jsonedit.Object(body, c.Edits...); err != nil {
			return nil, badRequest("the body is not a JSON object")
		}
	}
	var in oaRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, badRequest("the body does not match the chat completion schema")
	}
	out := gmRequest{GenerationConfig: gmGenerationCfg{Temperature: in.Temperature, TopP: in.TopP, TopK: in.TopK,
		MaxOutputTokens: firstPositive(ptrInt(in.MaxTokens), ptrInt(in.MaxCompletionTokens))}}
	var err error
	if out.GenerationConfig.StopSequences, err = stopSequences(in.Stop); err != nil {
		return nil, err
	}
	names := map[string]string{} // tool call id → function name, for the results
	for i, m := range in.Messages {
		switch m.Role {
		case "system", "developer":
			parts, err := geminiParts(m.Content, i, false)
			if err != nil {
				return nil, err
			}
			if out.SystemInstruction == nil {
				out.SystemInstruction = &gmContent{}
			}
			out.SystemInstruction.Parts = append(out.SystemInstruction.Parts, parts...)
		case "user":
			parts, err := geminiParts(m.Content, i, true)
			if err != nil {
				return nil, err
			}
			out.Contents = appendContent(out.Contents, "user", parts)
		case "assistant":
			parts, err := geminiParts(m.Content, i, false)
			if err != nil {
				return nil, err
			}
			for _, tc := range m.ToolCalls {
				args := json.RawMessage(tc.Function.Arguments)
				if strings.TrimSpace(tc.Function.Arguments) == "" {
					args = json.RawMessage("{}")
				} else if !json.Valid(args) || bytes.TrimSpace(args)[0] != '{' {
					return nil, badRequest("messages[%d].tool_calls: arguments must be a JSON object", i)
				}
				names[tc.ID] = tc.Function.Name
				p := gmPart{}
				p.FunctionCall = &struct {
					Name string          `json:"name"`
					Args json.RawMessage `json:"args,omitempty"`
				}{tc.Function.Name, args}
				parts = append(parts, p)
			}
			out.Contents = appendContent(out.Contents, "model", parts)
		case "tool":
			name, ok := names[m.ToolCallID]
			if !ok {
				return nil, badRequest("messages[%d].tool_call_id answers no earlier tool call", i)
			}
			text, err := toolResult(m.Content, i)
			if err != nil {
				return nil, err
			}
			p := gmPart{}
			p.FunctionResponse = &struct {
				Name     string          `json:"name"`
				Response json.RawMessage `json:"response"`
			}{name, json.RawMessage(`{"content":` + string(text) + `}`)}
			out.Contents = appendContent(out.Contents, "user", []gmPart{p})
		default:
			return nil, badRequest("messages[%d] has role %q", i, m.Role)
		}
	}
	var decls []gmFunction
	for i, t := range in.Tools {
		if t.Type != "" && t.Type != "function" {
			return nil, badRequest("tools[%d] has type %q; only function tools are supported", i, t.Type)
		}
		decls = append(decls, gmFunction{Name: t.Function.Name, Description: t.Function.Description, Parameters: nullIfEmpty(t.Function.Parameters)})
	}
	if decls != nil {
		out.Tools = []gmTool{{FunctionDeclarations: decls}}
	}
	if out.ToolConfig, err = geminiToolConfig(in.ToolChoice); err != nil {
		return nil, err
	}
	maxOut := firstPositive(out.GenerationConfig.MaxOutputTokens, c.MaxOutput, defaultMaxOutput)
	if th := thinking(in.Reasoning, in.ReasoningEffort, maxOut); th != nil {
		out.GenerationConfig.ThinkingConfig = &gmThinkingConfig{ThinkingBudget: th.BudgetTokens,
			IncludeThoughts: in.Reasoning == nil || !in.Reasoning.Exclude}
	}
	return json.Marshal(out)
}

func nullIfEmpty(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// appendContent adds a turn, merged into the previous one of its role.
func appendContent(cs []gmContent, role string, parts []gmPart) []gmContent {
	if len(parts) == 0 {
		return cs
	}
	if n := len(cs); n > 0 && cs[n-1].Role == role {
		cs[n-1].Parts = append(cs[n-1].Parts, parts...)
		return cs
	}
	return append(cs, gmContent{Role: role, Parts: parts})
}

// geminiParts converts OpenAI content to parts; images and files only
// where a user may send them.
func geminiParts(raw json.RawMessage, i int, media bool) ([]gmPart, error) {
	blocks, err := contentBlocks(raw, i, media)
	if err != nil {
		return nil, err
	}
	var parts []gmPart
	for _, b := range blocks {
		p := gmPart{}
		switch {
		case b.Type == "text":
			p.Text = b.Text
		case b.Source.Type == "base64":
			p.InlineData = &struct {
				MimeType string `json:"mimeType"`
				Data     string `json:"data"`
			}{b.Source.MediaType, b.Source.Data}
		default:
			p.FileData = &struct {
				MimeType string `json:"mimeType,omitempty"`
				FileURI  string `json:"fileUri"`
			}{mime.TypeByExtension(path.Ext(b.Source.URL)), b.Source.URL}
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// geminiToolConfig maps OpenAI's tool_choice to a function calling mode.
func geminiToolConfig(raw json.RawMessage) (*gmToolConfig, error) {
	tc, err := toolChoice(raw, nil, false)
	if err != nil || tc == nil {
		return nil, err
	}
	cfg := &gmToolConfig{}
	switch tc["type"] {
	case "auto":
		cfg.FunctionCallingConfig.Mode = "AUTO"
	case "none":
		cfg.FunctionCallingConfig.Mode = "NONE"
	case "any":
		cfg.FunctionCallingConfig.Mode = "ANY"
	case "tool":
		cfg.FunctionCallingConfig.Mode = "ANY"
		cfg.FunctionCallingConfig.AllowedFunctionNames = []string{tc["name"].(string)}
	}
	return cfg, nil
}
