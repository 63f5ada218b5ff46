package mockupstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// anRequest is an Anthropic Messages request as the fake reads it. Every
// member the API takes is declared, so an unknown one is refused as the
// API refuses it ("Extra inputs are not permitted").
type anRequest struct {
	Model         string          `json:"model"`
	MaxTokens     *int            `json:"max_tokens"`
	Messages      []anMessage     `json:"messages"`
	System        json.RawMessage `json:"system"`
	Stream        bool            `json:"stream"`
	StopSequences []string        `json:"stop_sequences"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	Tools         []anTool        `json:"tools"`
	ToolChoice    *anToolChoice   `json:"tool_choice"`
	Thinking      *anThinking     `json:"thinking"`
	Metadata      *struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
	ServiceTier string `json:"service_tier"`
}

type anMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	blocks  []anBlock
}

type anBlock struct {
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
	Thinking     *string         `json:"thinking"`
	Signature    string          `json:"signature"`
	Data         string          `json:"data"`
	CacheControl *struct {
		Type string `json:"type"`
		TTL  string `json:"ttl"`
	} `json:"cache_control"`
	Citations json.RawMessage `json:"citations"`
	Title     string          `json:"title"`
	Context   string          `json:"context"`
}

type anTool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema"`
	CacheControl json.RawMessage `json:"cache_control"`
	Type         string          `json:"type"`
}

type anToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
}

type anThinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens"`
}

// validToolName is Anthropic's rule for a tool's name, ^[a-zA-Z0-9_-]{1,128}$.
// It is a loop rather than a regexp: the compiled bounded repetition holds
// about 50 KB for the life of any process that links the fakes (the
// gateway does, for its demo).
func validToolName(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

var imageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// readAnthropic decodes and validates body with the Messages API's rules,
// returning the invalid_request_error message when it breaks one.
func readAnthropic(body []byte) (anRequest, string) {
	var req anRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return req, strings.Trim(f, `"`) + ": Extra inputs are not permitted"
		}
		return req, "There was an error parsing the body of your request: " + err.Error()
	}
	switch {
	case req.Model == "":
		return req, "model: Field required"
	case req.MaxTokens == nil:
		return req, "max_tokens: Field required"
	case *req.MaxTokens < 1:
		return req, "max_tokens: Input should be greater than or equal to 1"
	case len(req.Messages) == 0:
		return req, "messages: at least one message is required"
	case req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 1):
		return req, "temperature: Input should be less than or equal to 1"
	case req.TopP != nil && (*req.TopP < 0 || *req.TopP > 1):
		return req, "top_p: Input should be less than or equal to 1"
	}
	if msg := validateSystem(req.System); msg != "" {
		return req, msg
	}
	if msg := validateTools(req); msg != "" {
		return req, msg
	}
	if t := req.Thinking; t != nil {
		switch {
		case t.Type == "disabled":
		case t.Type != "enabled":
			return req, "thinking.type: Input should be 'enabled' or 'disabled'"
		case t.BudgetTokens < 1024:
			return req, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
		case t.BudgetTokens >= *req.MaxTokens:
			return req, "`max_tokens` must be greater than `thinking.budget_tokens`."
		case req.Temperature != nil && *req.Temperature != 1:
			return req, "`temperature` may only be set to 1 when thinking is enabled."
		case req.TopK != nil:
			return req, "`top_k` is not supported when thinking is enabled."
		}
	}
	for i := range req.Messages {
		if msg := validateMessage(&req, i); msg != "" {
			return req, msg
		}
	}
	return req, ""
}

func (req anRequest) thinkingOn() bool { return req.Thinking != nil && req.Thinking.Type == "enabled" }

func validateSystem(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return ""
	}
	var blocks []anBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "system: Input should be a valid string or list of text blocks"
	}
	for i, b := range blocks {
		if b.Type != "text" {
			return fmt.Sprintf("system.%d.type: Input should be 'text'", i)
		}
		if b.Text == "" {
			return "system: text content blocks must be non-empty"
		}
	}
	return ""
}

func validateTools(req anRequest) string {
	for i, t := range req.Tools {
		if !validToolName(t.Name) {
			return fmt.Sprintf("tools.%d.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'", i)
		}
		var schema struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(t.InputSchema, &schema) != nil || schema.Type != "object" {
			return fmt.Sprintf("tools.%d.custom.input_schema.type: Input should be 'object'", i)
		}
	}
	if tc := req.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto", "any", "none":
		case "tool":
			if tc.Name == "" {
				return "tool_choice.tool.name: Field required"
			}
		default:
			return "tool_choice: Input tag '" + tc.Type + "' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
		}
		if tc.Type != "none" && tc.Type != "auto" && len(req.Tools) == 0 {
			return "tool_choice may only be specified while providing tools"
		}
	}
	return ""
}

// validateMessage checks message i: its role, its blocks, tool results
// answering the previous turn's tool uses, and (with thinking on) the
// thinking block that must open an assistant turn using tools.
func validateMessage(req *anRequest, i int) string {
	m := &req.Messages[i]
	if m.Role != "user" && m.Role != "assistant" {
		return fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i)
	}
	if i == 0 && m.Role != "user" {
		return "messages: first message must use the \"user\" role"
	}
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		if s == "" && !(i == len(req.Messages)-1 && m.Role == "assistant") {
			return fmt.Sprintf("messages.%d: all messages must have non-empty content except for the optional final assistant message", i)
		}
		m.blocks = []anBlock{{Type: "text", Text: s}}
	} else if err := json.Unmarshal(m.Content, &m.blocks); err != nil {
		return fmt.Sprintf("messages.%d.content: Input should be a valid string or list of content blocks", i)
	}
	for j, b := range m.blocks {
		at := fmt.Sprintf("messages.%d.content.%d", i, j)
		switch b.Type {
		case "text":
			if b.Text == "" {
				return "messages: text content blocks must be non-empty"
			}
		case "image", "document":
			if m.Role != "user" {
				return at + ": " + b.Type + " blocks are only allowed in user messages"
			}
			if msg := validateSource(b, at); msg != "" {
				return msg
			}
		case "tool_use":
			if m.Role != "assistant" {
				return at + ": tool_use blocks are only allowed in assistant messages"
			}
			if b.ID == "" || b.Name == "" || len(b.Input) == 0 || bytes.TrimSpace(b.Input)[0] != '{' {
				return at + ".tool_use: id, name and an input object are required"
			}
		case "tool_result":
			if m.Role != "user" {
				return at + ": tool_result blocks are only allowed in user messages"
			}
		case "thinking":
			if m.Role != "assistant" || b.Thinking == nil || b.Signature == "" {
				return at + ".thinking.signature: Field required"
			}
			if b.Signature != thinkingSignature(*b.Thinking) {
				return at + ": Invalid `signature` in `thinking` block"
			}
		case "redacted_thinking":
			if m.Role != "assistant" || b.Data == "" {
				return at + ".redacted_thinking.data: Field required"
			}
		default:
			return at + ".type: Input tag '" + b.Type + "' found using 'type' does not match any of the expected tags"
		}
	}
	// Tool uses are answered in the very next turn, and only they are.
	uses := map[string]bool{}
	if i > 0 && req.Messages[i-1].Role == "assistant" {
		for _, b := range req.Messages[i-1].blocks {
			if b.Type == "tool_use" {
				uses[b.ID] = true
			}
		}
	}
	for _, b := range m.blocks {
		if b.Type == "tool_result" {
			if !uses[b.ToolUseID] {
				return fmt.Sprintf("messages.%d.content: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, b.ToolUseID)
			}
			delete(uses, b.ToolUseID)
		}
	}
	if len(uses) > 0 && m.Role == "user" {
		return fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after", i-1)
	}
	if m.Role == "assistant" && req.thinkingOn() {
		hasTool := false
		for _, b := range m.blocks {
			hasTool = hasTool || b.Type == "tool_use"
		}
		if hasTool && m.blocks[0].Type != "thinking" && m.blocks[0].Type != "redacted_thinking" {
			return fmt.Sprintf("messages.%d.content.0.type: Expected `thinking` or `redacted_thinking`, but found `%s`. When `thinking` is enabled, a final `assistant` message must start with a thinking block.", i, m.blocks[0].Type)
		}
	}
	return ""
}

func validateSource(b anBlock, at string) string {
	src := b.Source
	if src == nil {
		return at + ".source: Field required"
	}
	switch src.Type {
	case "base64":
		if b.Type == "image" && !imageTypes[src.MediaType] {
			return at + ".source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
		}
		if b.Type == "document" && src.MediaType != "application/pdf" {
			return at + ".source.base64.media_type: Input should be 'application/pdf'"
		}
		if src.Data == "" {
			return at + ".source.base64.data: Field required"
		}
	case "url":
		if !strings.HasPrefix(src.URL, "https://") && !strings.HasPrefix(src.URL, "http://") {
			return at + ".source.url.url: Input should be a valid URL"
		}
	default:
		return at + ".source: Input tag '" + src.Type + "' found using 'type' does not match any of the expected tags: 'base64', 'url'"
	}
	return ""
}
