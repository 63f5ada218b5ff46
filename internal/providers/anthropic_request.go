package providers

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/jsonedit"
)

// defaultMaxOutput is Anthropic's required max_tokens when neither the
// request nor the catalog gives one.
const defaultMaxOutput = 4096

// minThinkingBudget is the smallest extended-thinking budget Anthropic
// accepts.
const minThinkingBudget = 1024

// The OpenAI Chat Completions request, as far as a translation reads it.
type (
	oaRequest struct {
		Messages            []oaMessage     `json:"messages"`
		MaxTokens           *int            `json:"max_tokens"`
		MaxCompletionTokens *int            `json:"max_completion_tokens"`
		Temperature         *float64        `json:"temperature"`
		TopP                *float64        `json:"top_p"`
		TopK                *int            `json:"top_k"`
		Stop                json.RawMessage `json:"stop"`
		Tools               []oaTool        `json:"tools"`
		ToolChoice          json.RawMessage `json:"tool_choice"`
		ParallelToolCalls   *bool           `json:"parallel_tool_calls"`
		Reasoning           *oaReasoning    `json:"reasoning"`
		ReasoningEffort     string          `json:"reasoning_effort"`
		User                string          `json:"user"`
	}
	oaMessage struct {
		Role             string            `json:"role"`
		Content          json.RawMessage   `json:"content"`
		ToolCalls        []oaToolCall      `json:"tool_calls"`
		ToolCallID       string            `json:"tool_call_id"`
		ReasoningDetails []reasoningDetail `json:"reasoning_details"`
	}
	oaPart struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		ImageURL *struct {
			URL string `json:"url"`
		} `json:"image_url"`
		File *struct {
			FileData string `json:"file_data"`
		} `json:"file"`
		CacheControl json.RawMessage `json:"cache_control"`
	}
	oaTool struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
		CacheControl json.RawMessage `json:"cache_control"`
	}
	oaReasoning struct {
		Effort    string `json:"effort"`
		MaxTokens *int   `json:"max_tokens"`
		Enabled   *bool  `json:"enabled"`
		Exclude   bool   `json:"exclude"`
	}
)

// The Anthropic Messages request.
type (
	anRequest struct {
		Model         string         `json:"model"`
		MaxTokens     int            `json:"max_tokens"`
		System        []anBlock      `json:"system,omitempty"`
		Messages      []anMessage    `json:"messages"`
		Stream        bool           `json:"stream,omitempty"`
		StopSequences []string       `json:"stop_sequences,omitempty"`
		Temperature   *float64       `json:"temperature,omitempty"`
		TopP          *float64       `json:"top_p,omitempty"`
		TopK          *int           `json:"top_k,omitempty"`
		Tools         []anTool       `json:"tools,omitempty"`
		ToolChoice    map[string]any `json:"tool_choice,omitempty"`
		Thinking      *anThinking    `json:"thinking,omitempty"`
		Metadata      *anMetadata    `json:"metadata,omitempty"`
	}
	anMessage struct {
		Role    string    `json:"role"`
		Content []anBlock `json:"content"`
	}
	// anBlock is every content block type; each sets only its own fields.
	anBlock struct {
		Type         string          `json:"type"`
		Text         string          `json:"text,omitempty"`
		Source       *anSource       `json:"source,omitempty"`
		ID           string          `json:"id,omitempty"`
		Name         string          `json:"name,omitempty"`
		Input        json.RawMessage `json:"input,omitempty"`
		ToolUseID    string          `json:"tool_use_id,omitempty"`
		Content      json.RawMessage `json:"content,omitempty"`
		Thinking     string          `json:"thinking,omitempty"`
		Signature    string          `json:"signature,omitempty"`
		Data         string          `json:"data,omitempty"`
		CacheControl json.RawMessage `json:"cache_control,omitempty"`
	}
	anSource struct {
		Type      string `json:"type"` // base64 or url
		MediaType string `json:"media_type,omitempty"`
		Data      string `json:"data,omitempty"`
		URL       string `json:"url,omitempty"`
	}
	anTool struct {
		Name         string          `json:"name"`
		Description  string          `json:"description,omitempty"`
		InputSchema  json.RawMessage `json:"input_schema"`
		CacheControl json.RawMessage `json:"cache_control,omitempty"`
	}
	anThinking struct {
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	}
	anMetadata struct {
		UserID string `json:"user_id"`
	}
)

// errUntranslatable marks a request this family cannot express.
var errUntranslatable = errors.New("untranslatable")

// untranslatable is the client error for a request the provider's API
// cannot express (a message part it has no equivalent for).
func untranslatable(provider string, err error) *apierr.Error {
	return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
		"Provider %s cannot take this request: %s.", provider, strings.TrimPrefix(err.Error(), errUntranslatable.Error()+": "))
}

func badRequest(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUntranslatable, fmt.Sprintf(format, a...))
}

// anthropicBody translates c's OpenAI request (with the gateway's edits
// applied) into an Anthropic Messages request.
func anthropicBody(c Call) ([]byte, error) {
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
	out := anRequest{Model: c.UpstreamModel, Stream: c.Stream, Temperature: in.Temperature, TopP: in.TopP, TopK: in.TopK}
	out.MaxTokens = firstPositive(ptrInt(in.MaxTokens), ptrInt(in.MaxCompletionTokens), c.MaxOutput, defaultMaxOutput)
	if t := out.Temperature; t != nil && *t > 1 {
		one := 1.0 // Anthropic's range is 0 to 1, OpenAI's 0 to 2
		out.Temperature = &one
	}
	if in.User != "" {
		out.Metadata = &anMetadata{UserID: in.User}
	}
	var err error
	if out.StopSequences, err = stopSequences(in.Stop); err != nil {
		return nil, err
	}
	if out.System, out.Messages, err = anthropicMessages(in.Messages); err != nil {
		return nil, err
	}
	for i, t := range in.Tools {
		if t.Type != "" && t.Type != "function" {
			return nil, badRequest("tools[%d] has type %q; only function tools are supported", i, t.Type)
		}
		schema := t.Function.Parameters
		if len(schema) == 0 || string(schema) == "null" {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out.Tools = append(out.Tools, anTool{Name: t.Function.Name, Description: t.Function.Description,
			InputSchema: schema, CacheControl: t.CacheControl})
	}
	if out.ToolChoice, err = toolChoice(in.ToolChoice, in.ParallelToolCalls, len(out.Tools) > 0); err != nil {
		return nil, err
	}
	if out.ToolChoice != nil && out.ToolChoice["type"] == "none" && len(out.Tools) == 0 {
		out.ToolChoice = nil
	}
	out.Thinking = thinking(in.Reasoning, in.ReasoningEffort, out.MaxTokens)
	if out.Thinking != nil {
		// Extended thinking takes no temperature other than 1, nor top_k.
		out.Temperature, out.TopK = nil, nil
	}
	return json.Marshal(out)
}

func ptrInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func firstPositive(ns ...int) int {
	for _, n := range ns {
		if n > 0 {
			return n
		}
	}
	return 0
}

// stopSequences reads OpenAI's stop: a string or an array of strings.
func stopSequences(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, badRequest("stop must be a string or an array of strings")
	}
	return many, nil
}

// toolChoice maps OpenAI's tool_choice ("auto", "none", "required" or a
// named function) and parallel_tool_calls to Anthropic's.
func toolChoice(raw json.RawMessage, parallel *bool, tools bool) (map[string]any, error) {
	var tc map[string]any
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		if !tools {
			return nil, nil
		}
		tc = map[string]any{"type": "auto"}
	default:
		var s string
		if json.Unmarshal(raw, &s) == nil {
			switch s {
			case "auto":
				tc = map[string]any{"type": "auto"}
			case "none":
				tc = map[string]any{"type": "none"}
			case "required":
				tc = map[string]any{"type": "any"}
			default:
				return nil, badRequest("tool_choice %q is not auto, none or required", s)
			}
			break
		}
		var named struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(raw, &named) != nil || named.Function.Name == "" {
			return nil, badRequest("tool_choice must name a function")
		}
		tc = map[string]any{"type": "tool", "name": named.Function.Name}
	}
	if parallel != nil && !*parallel && tc["type"] != "none" {
		tc["disable_parallel_tool_use"] = true
	}
	return tc, nil
}

// effortShare is the part of max_tokens an effort level gives to thinking,
// as OpenRouter maps it.
var effortShare = map[string]float64{"minimal": 0.1, "low": 0.2, "medium": 0.5, "high": 0.8}

// thinking maps OpenRouter's reasoning (effort or max_tokens) and OpenAI's
// reasoning_effort to extended thinking. The budget must be at least 1024
// and below max_tokens; when max_tokens leaves no room, thinking stays off.
func thinking(r *oaReasoning, effort string, maxTokens int) *anThinking {
	budget := 0
	switch {
	case r != nil && r.Enabled != nil && !*r.Enabled:
		return nil
	case r != nil && r.MaxTokens != nil:
		budget = *r.MaxTokens
	case r != nil && r.Effort != "":
		effort = r.Effort
	case r != nil && r.Enabled != nil:
		effort = "medium"
	}
	if budget == 0 && effort != "" {
		share, ok := effortShare[effort]
		if !ok || effort == "none" {
			return nil
		}
		budget = int(float64(maxTokens) * share)
	}
	if budget <= 0 {
		return nil
	}
	budget = min(max(budget, minThinkingBudget), maxTokens-1)
	if budget < minThinkingBudget {
		return nil
	}
	return &anThinking{Type: "enabled", BudgetTokens: budget}
}

// anthropicMessages splits out the system prompt and turns OpenAI's turns
// into Anthropic's: tool results become user turns of tool_result blocks,
// and consecutive turns of one role merge, as the API wants them.
func anthropicMessages(msgs []oaMessage) ([]anBlock, []anMessage, error) {
	var system []anBlock
	var out []anMessage
	add := func(role string, blocks []anBlock) {
		if len(blocks) == 0 {
			return
		}
		if n := len(out); n > 0 && out[n-1].Role == role {
			out[n-1].Content = append(out[n-1].Content, blocks...)
			return
		}
		out = append(out, anMessage{Role: role, Content: blocks})
	}
	for i, m := range msgs {
		switch m.Role {
		case "system", "developer":
			blocks, err := contentBlocks(m.Content, i, false)
			if err != nil {
				return nil, nil, err
			}
			system = append(system, blocks...)
		case "user":
			blocks, err := contentBlocks(m.Content, i, true)
			if err != nil {
				return nil, nil, err
			}
			add("user", blocks)
		case "assistant":
			var blocks []anBlock
			for _, d := range m.ReasoningDetails {
				switch {
				case d.Format != "" && d.Format != anthropicFormat:
					// Another family's reasoning cannot be verified here.
				case d.Type == "reasoning.text" && d.Signature != "":
					blocks = append(blocks, anBlock{Type: "thinking", Thinking: d.Text, Signature: d.Signature})
				case d.Type == "reasoning.encrypted" && d.Data != "":
					blocks = append(blocks, anBlock{Type: "redacted_thinking", Data: d.Data})
				}
			}
			text, err := contentBlocks(m.Content, i, false)
			if err != nil {
				return nil, nil, err
			}
			blocks = append(blocks, text...)
			for _, tc := range m.ToolCalls {
				input := json.RawMessage(tc.Function.Arguments)
				if strings.TrimSpace(tc.Function.Arguments) == "" {
					input = json.RawMessage("{}")
				} else if !json.Valid(input) || bytes.TrimSpace(input)[0] != '{' {
					return nil, nil, badRequest("messages[%d].tool_calls: arguments must be a JSON object", i)
				}
				blocks = append(blocks, anBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
			}
			add("assistant", blocks)
		case "tool":
			content, err := toolResult(m.Content, i)
			if err != nil {
				return nil, nil, err
			}
			add("user", []anBlock{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: content}})
		default:
			return nil, nil, badRequest("messages[%d] has role %q", i, m.Role)
		}
	}
	return system, out, nil
}

// contentBlocks converts OpenAI content (a string, or parts) to blocks;
// media (images, files) only where a user may send them.
func contentBlocks(raw json.RawMessage, i int, media bool) ([]anBlock, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil // Anthropic refuses empty text blocks
		}
		return []anBlock{{Type: "text", Text: s}}, nil
	}
	var parts []oaPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, badRequest("messages[%d].content must be a string or an array of parts", i)
	}
	var out []anBlock
	for j, p := range parts {
		var b anBlock
		switch {
		case p.Type == "text":
			if p.Text == "" {
				continue
			}
			b = anBlock{Type: "text", Text: p.Text}
		case p.Type == "image_url" && media && p.ImageURL != nil:
			src, err := mediaSource(p.ImageURL.URL, "image/")
			if err != nil {
				return nil, badRequest("messages[%d].content[%d].image_url: %v", i, j, err)
			}
			b = anBlock{Type: "image", Source: src}
		case p.Type == "file" && media && p.File != nil:
			src, err := mediaSource(p.File.FileData, "")
			if err != nil {
				return nil, badRequest("messages[%d].content[%d].file: %v", i, j, err)
			}
			b = anBlock{Type: "document", Source: src}
		default:
			return nil, badRequest("messages[%d].content[%d] has type %q, which this provider does not take there", i, j, p.Type)
		}
		b.CacheControl = p.CacheControl
		out = append(out, b)
	}
	return out, nil
}

// mediaSource reads a data: URL (base64) or an http(s) URL.
func mediaSource(u, wantPrefix string) (*anSource, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isBase64 || mediaType == "" || !strings.HasPrefix(mediaType, wantPrefix) {
			return nil, errors.New("a data URL must be data:<media type>;base64,<data>")
		}
		if _, err := base64.StdEncoding.DecodeString(data); err != nil {
			return nil, errors.New("the data URL's data is not base64")
		}
		return &anSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &anSource{Type: "url", URL: u}, nil
	}
	return nil, errors.New("the URL must be an http(s) or data: URL")
}

// toolResult is a tool message's content as a tool_result's: its text.
func toolResult(raw json.RawMessage, i int) (json.RawMessage, error) {
	blocks, err := contentBlocks(raw, i, false)
	if err != nil {
		return nil, err
	}
	var text strings.Builder
	for _, b := range blocks {
		text.WriteString(b.Text)
	}
	return json.Marshal(text.String())
}
