package skins

import (
	"encoding/json"

	"github.com/tidwall/gjson"
)

// Anthropic's answer shapes.
type (
	message struct {
		ID           string         `json:"id"`
		Type         string         `json:"type"`
		Role         string         `json:"role"`
		Model        string         `json:"model"`
		Provider     string         `json:"provider,omitempty"`
		Content      []contentBlock `json:"content"`
		StopReason   *string        `json:"stop_reason"`
		StopSequence *string        `json:"stop_sequence"`
		Usage        *msgUsage      `json:"usage,omitempty"`
	}
	contentBlock struct {
		Type      string          `json:"type"`
		Text      *string         `json:"text,omitempty"`
		Thinking  *string         `json:"thinking,omitempty"`
		Signature *string         `json:"signature,omitempty"`
		Data      string          `json:"data,omitempty"`
		ID        string          `json:"id,omitempty"`
		Name      string          `json:"name,omitempty"`
		Input     json.RawMessage `json:"input,omitempty"`
	}
	msgUsage struct {
		InputTokens              int             `json:"input_tokens"`
		OutputTokens             int             `json:"output_tokens"`
		CacheReadInputTokens     int             `json:"cache_read_input_tokens"`
		CacheCreationInputTokens int             `json:"cache_creation_input_tokens"`
		Cost                     json.RawMessage `json:"cost,omitempty"`
	}
)

// stopReason maps a finish reason back to Anthropic's stop_reason; an
// Anthropic upstream's own (its native reason) is kept as it said it.
func stopReason(finish, native string) string {
	switch native {
	case "end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn":
		return native
	}
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls":
		return "tool_use"
	case "content_filter":
		return "refusal"
	default:
		return "end_turn"
	}
}

// usageOf is Anthropic's usage from OpenAI's: input tokens without the
// cache classes, and the exact cost as Perpetuo rendered it.
func usageOf(u gjson.Result) *msgUsage {
	read := int(u.Get("prompt_tokens_details.cached_tokens").Int())
	write := int(u.Get("prompt_tokens_details.cache_write_tokens").Int())
	out := &msgUsage{InputTokens: max(int(u.Get("prompt_tokens").Int())-read-write, 0), OutputTokens: int(u.Get("completion_tokens").Int()),
		CacheReadInputTokens: read, CacheCreationInputTokens: write}
	if c := u.Get("cost"); c.Exists() {
		out.Cost = json.RawMessage(c.Raw)
	}
	return out
}

func str(s string) *string { return &s }

// ChatToMessage translates the gateway's chat.completion into a Message.
func ChatToMessage(chat []byte) ([]byte, error) {
	doc := gjson.ParseBytes(chat)
	choice := doc.Get("choices.0")
	msg := choice.Get("message")
	out := message{ID: doc.Get("id").String(), Type: "message", Role: "assistant", Model: doc.Get("model").String(),
		Provider: doc.Get("provider").String(), Content: []contentBlock{}, Usage: usageOf(doc.Get("usage"))}
	signed := false
	for _, d := range msg.Get("reasoning_details").Array() {
		switch d.Get("type").String() {
		case "reasoning.text":
			out.Content = append(out.Content, contentBlock{Type: "thinking", Thinking: str(d.Get("text").String()), Signature: str(d.Get("signature").String())})
			signed = true
		case "reasoning.encrypted":
			out.Content = append(out.Content, contentBlock{Type: "redacted_thinking", Data: d.Get("data").String()})
			signed = true
		}
	}
	if r := msg.Get("reasoning").String(); r != "" && !signed {
		out.Content = append(out.Content, contentBlock{Type: "thinking", Thinking: str(r), Signature: str("")})
	}
	if t := msg.Get("content").String(); t != "" {
		out.Content = append(out.Content, contentBlock{Type: "text", Text: str(t)})
	}
	for _, tc := range msg.Get("tool_calls").Array() {
		input := json.RawMessage(tc.Get("function.arguments").String())
		if !json.Valid(input) || !gjson.ParseBytes(input).IsObject() {
			input = json.RawMessage("{}")
		}
		out.Content = append(out.Content, contentBlock{Type: "tool_use", ID: tc.Get("id").String(), Name: tc.Get("function.name").String(), Input: input})
	}
	out.StopReason = str(stopReason(choice.Get("finish_reason").String(), choice.Get("native_finish_reason").String()))
	return json.Marshal(out)
}
