// Package skins serves other APIs' shapes on Perpetuo's one pipeline:
// Anthropic's Messages API in, translated to a Chat Completions request
// for the gateway, and the gateway's chat.completion answers (JSON or
// chunks) translated back. The gateway, guardrails, routing and records
// never see the difference.
package skins

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// Error is a request the skin cannot translate: Field is the JSON pointer
// of the offending member, Rule what it must be.
type Error struct {
	Field, Rule string
}

func (e *Error) Error() string { return e.Field + ": " + e.Rule }

func fieldErr(rule string, format string, a ...any) *Error {
	return &Error{Field: fmt.Sprintf(format, a...), Rule: rule}
}

// anthropicFormat marks reasoning an Anthropic model produced, so the
// Anthropic adapter sends it back as thinking blocks.
const anthropicFormat = "anthropic-claude-v1"

// The Anthropic request, as far as the translation reads it.
type (
	msgRequest struct {
		MaxTokens     int             `json:"max_tokens"`
		Messages      []msgParam      `json:"messages"`
		System        json.RawMessage `json:"system"`
		Stream        bool            `json:"stream"`
		StopSequences []string        `json:"stop_sequences"`
		Temperature   *float64        `json:"temperature"`
		TopP          *float64        `json:"top_p"`
		TopK          *int            `json:"top_k"`
		Tools         []struct {
			Name         string          `json:"name"`
			Description  string          `json:"description"`
			InputSchema  json.RawMessage `json:"input_schema"`
			CacheControl json.RawMessage `json:"cache_control"`
		} `json:"tools"`
		ToolChoice *struct {
			Type                   string `json:"type"`
			Name                   string `json:"name"`
			DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
		} `json:"tool_choice"`
		Thinking *struct {
			Type         string `json:"type"`
			BudgetTokens int    `json:"budget_tokens"`
		} `json:"thinking"`
		Metadata *struct {
			UserID string `json:"user_id"`
		} `json:"metadata"`
	}
	msgParam struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	msgBlock struct {
		Type   string `json:"type"`
		Text   string `json:"text"`
		Source *struct {
			Type      string `json:"type"`
			MediaType string `json:"media_type"`
			Data      string `json:"data"`
			URL       string `json:"url"`
		} `json:"source"`
		ID           string          `json:"id"`
		Name         string          `json:"name"`
		Input        json.RawMessage `json:"input"`
		ToolUseID    string          `json:"tool_use_id"`
		Content      json.RawMessage `json:"content"`
		IsError      bool            `json:"is_error"`
		Thinking     string          `json:"thinking"`
		Signature    string          `json:"signature"`
		Data         string          `json:"data"`
		CacheControl json.RawMessage `json:"cache_control"`
	}
)

// The Chat Completions request it becomes.
type (
	chatRequest struct {
		Model             json.RawMessage `json:"model,omitempty"`
		Models            json.RawMessage `json:"models,omitempty"`
		Provider          json.RawMessage `json:"provider,omitempty"`
		Strategy          json.RawMessage `json:"strategy,omitempty"`
		SessionID         json.RawMessage `json:"session_id,omitempty"`
		Messages          []chatMessage   `json:"messages"`
		MaxTokens         int             `json:"max_tokens"`
		Stream            bool            `json:"stream,omitempty"`
		Stop              []string        `json:"stop,omitempty"`
		Temperature       *float64        `json:"temperature,omitempty"`
		TopP              *float64        `json:"top_p,omitempty"`
		TopK              *int            `json:"top_k,omitempty"`
		Tools             []chatTool      `json:"tools,omitempty"`
		ToolChoice        any             `json:"tool_choice,omitempty"`
		ParallelToolCalls *bool           `json:"parallel_tool_calls,omitempty"`
		Reasoning         *chatReasoning  `json:"reasoning,omitempty"`
		User              string          `json:"user,omitempty"`
	}
	chatMessage struct {
		Role             string            `json:"role"`
		Content          any               `json:"content"`
		ToolCalls        []chatToolCall    `json:"tool_calls,omitempty"`
		ToolCallID       string            `json:"tool_call_id,omitempty"`
		ReasoningDetails []reasoningDetail `json:"reasoning_details,omitempty"`
	}
	chatPart struct {
		Type     string `json:"type"`
		Text     string `json:"text,omitempty"`
		ImageURL *struct {
			URL string `json:"url"`
		} `json:"image_url,omitempty"`
		File *struct {
			FileData string `json:"file_data"`
		} `json:"file,omitempty"`
		CacheControl json.RawMessage `json:"cache_control,omitempty"`
	}
	chatTool struct {
		Type     string `json:"type"`
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			Parameters  json.RawMessage `json:"parameters,omitempty"`
		} `json:"function"`
		CacheControl json.RawMessage `json:"cache_control,omitempty"`
	}
	chatToolCall struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	chatReasoning struct {
		MaxTokens int `json:"max_tokens"`
	}
	reasoningDetail struct {
		Type      string `json:"type"`
		Text      string `json:"text,omitempty"`
		Signature string `json:"signature,omitempty"`
		Data      string `json:"data,omitempty"`
		Format    string `json:"format,omitempty"`
		Index     int    `json:"index"`
	}
)

// MessagesToChat translates an Anthropic Messages request into the Chat
// Completions request the gateway serves, keeping the routing extensions.
func MessagesToChat(body []byte) ([]byte, error) {
	var in msgRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fieldErr("must be a Messages request", "")
	}
	out := chatRequest{MaxTokens: in.MaxTokens, Stream: in.Stream, Stop: in.StopSequences,
		Temperature: in.Temperature, TopP: in.TopP, TopK: in.TopK}
	for _, f := range []struct {
		name string
		dst  *json.RawMessage
	}{{"model", &out.Model}, {"models", &out.Models}, {"provider", &out.Provider}, {"strategy", &out.Strategy}, {"session_id", &out.SessionID}} {
		if r := gjson.GetBytes(body, f.name); r.Exists() {
			*f.dst = json.RawMessage(r.Raw)
		}
	}
	if in.Metadata != nil {
		out.User = in.Metadata.UserID
	}
	if len(in.System) > 0 && string(in.System) != "null" {
		content, err := textContent(in.System, "/system")
		if err != nil {
			return nil, err
		}
		out.Messages = append(out.Messages, chatMessage{Role: "system", Content: content})
	}
	for i, m := range in.Messages {
		msgs, err := chatMessages(m, i)
		if err != nil {
			return nil, err
		}
		out.Messages = append(out.Messages, msgs...)
	}
	for _, t := range in.Tools {
		ct := chatTool{Type: "function", CacheControl: t.CacheControl}
		ct.Function.Name, ct.Function.Description, ct.Function.Parameters = t.Name, t.Description, t.InputSchema
		out.Tools = append(out.Tools, ct)
	}
	if tc := in.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto":
			out.ToolChoice = "auto"
		case "any":
			out.ToolChoice = "required"
		case "none":
			out.ToolChoice = "none"
		case "tool":
			if tc.Name == "" {
				return nil, fieldErr("must name the tool", "/tool_choice/name")
			}
			out.ToolChoice = map[string]any{"type": "function", "function": map[string]string{"name": tc.Name}}
		}
		if tc.DisableParallelToolUse {
			no := false
			out.ParallelToolCalls = &no
		}
	}
	if th := in.Thinking; th != nil && th.Type == "enabled" {
		if th.BudgetTokens < 1024 || th.BudgetTokens >= in.MaxTokens {
			return nil, fieldErr("must be at least 1024 and less than max_tokens", "/thinking/budget_tokens")
		}
		out.Reasoning = &chatReasoning{MaxTokens: th.BudgetTokens}
	}
	return json.Marshal(out)
}

// textContent reads a system prompt: a string, or text blocks (their
// cache_control kept).
func textContent(raw json.RawMessage, at string) (any, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var blocks []msgBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, fieldErr("must be a string or text blocks", "%s", at)
	}
	parts := make([]chatPart, 0, len(blocks))
	for j, b := range blocks {
		if b.Type != "text" {
			return nil, fieldErr("must be a text block", "%s/%d/type", at, j)
		}
		parts = append(parts, chatPart{Type: "text", Text: b.Text, CacheControl: b.CacheControl})
	}
	return parts, nil
}

// chatMessages translates one Anthropic turn: a user turn's tool results
// become tool messages (first, as they answer the previous turn), its
// other blocks a user message; an assistant turn one assistant message with
// its thinking as reasoning_details and tool uses as tool calls.
func chatMessages(m msgParam, i int) ([]chatMessage, error) {
	at := fmt.Sprintf("/messages/%d/content", i)
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		return []chatMessage{{Role: m.Role, Content: s}}, nil
	}
	var blocks []msgBlock
	if err := json.Unmarshal(m.Content, &blocks); err != nil {
		return nil, fieldErr("must be a string or content blocks", "%s", at)
	}
	var out []chatMessage
	var parts []chatPart
	asst := chatMessage{Role: "assistant"}
	var text strings.Builder
	for j, b := range blocks {
		bat := fmt.Sprintf("%s/%d", at, j)
		switch {
		case b.Type == "text" && m.Role == "assistant":
			text.WriteString(b.Text)
		case b.Type == "text":
			parts = append(parts, chatPart{Type: "text", Text: b.Text, CacheControl: b.CacheControl})
		case (b.Type == "image" || b.Type == "document") && m.Role == "user":
			p, err := mediaPart(b, bat)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		case b.Type == "tool_result" && m.Role == "user":
			content, err := resultText(b.Content, bat+"/content")
			if err != nil {
				return nil, err
			}
			out = append(out, chatMessage{Role: "tool", ToolCallID: b.ToolUseID, Content: content})
		case b.Type == "tool_use" && m.Role == "assistant":
			tc := chatToolCall{ID: b.ID, Type: "function"}
			tc.Function.Name = b.Name
			tc.Function.Arguments = string(orObject(b.Input))
			asst.ToolCalls = append(asst.ToolCalls, tc)
		case b.Type == "thinking" && m.Role == "assistant":
			asst.ReasoningDetails = append(asst.ReasoningDetails, reasoningDetail{Type: "reasoning.text", Text: b.Thinking,
				Signature: b.Signature, Format: anthropicFormat, Index: len(asst.ReasoningDetails)})
		case b.Type == "redacted_thinking" && m.Role == "assistant":
			asst.ReasoningDetails = append(asst.ReasoningDetails, reasoningDetail{Type: "reasoning.encrypted", Data: b.Data,
				Format: anthropicFormat, Index: len(asst.ReasoningDetails)})
		default:
			return nil, fieldErr(fmt.Sprintf("a %s block may not be in a %s message", b.Type, m.Role), "%s/type", bat)
		}
	}
	if m.Role == "assistant" {
		if text.Len() > 0 {
			asst.Content = text.String()
		}
		return append(out, asst), nil
	}
	if len(parts) > 0 {
		out = append(out, chatMessage{Role: "user", Content: parts})
	}
	return out, nil
}

// mediaPart is an image or PDF block as a Chat Completions part.
func mediaPart(b msgBlock, at string) (chatPart, error) {
	src := b.Source
	if src == nil {
		return chatPart{}, fieldErr("is required", "%s/source", at)
	}
	var url string
	switch src.Type {
	case "base64":
		if src.MediaType == "" {
			return chatPart{}, fieldErr("is required for base64 data", "%s/source/media_type", at)
		}
		if _, err := base64.StdEncoding.DecodeString(src.Data); err != nil || src.Data == "" {
			return chatPart{}, fieldErr("must be base64", "%s/source/data", at)
		}
		url = "data:" + src.MediaType + ";base64," + src.Data
	case "url":
		if !strings.HasPrefix(src.URL, "https://") && !strings.HasPrefix(src.URL, "http://") {
			return chatPart{}, fieldErr("must be an http(s) URL", "%s/source/url", at)
		}
		url = src.URL
	}
	if b.Type == "document" {
		p := chatPart{Type: "file", CacheControl: b.CacheControl}
		p.File = &struct {
			FileData string `json:"file_data"`
		}{url}
		return p, nil
	}
	p := chatPart{Type: "image_url", CacheControl: b.CacheControl}
	p.ImageURL = &struct {
		URL string `json:"url"`
	}{url}
	return p, nil
}

// resultText is a tool_result's content as text.
func resultText(raw json.RawMessage, at string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var blocks []msgBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "", fieldErr("must be a string or text blocks", "%s", at)
	}
	var text strings.Builder
	for _, b := range blocks {
		text.WriteString(b.Text)
	}
	return text.String(), nil
}

func orObject(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
		return json.RawMessage("{}")
	}
	return raw
}
