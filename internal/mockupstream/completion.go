package mockupstream

import (
	"encoding/json"
	"strings"
	"time"
)

const systemFingerprint = "fp_mock"

// completion is the reply computed for one request.
type completion struct {
	id           string
	created      int64
	model        string
	answer       answer
	words        []string // of the answer's text
	finishReason string
	usage        usage
	includeUsage bool
}

// newCompletion plays the fake model (see play) on the request; cached
// is how many of its prompt tokens the provider's cache holds.
func newCompletion(req chatRequest, cached int) completion {
	a := play(req.turn(), "call_")
	finish := "stop"
	switch a.stop {
	case "max_tokens":
		finish = "length"
	case "tool_use":
		finish = "tool_calls"
	}
	prompt, out := req.promptTokens(), a.outputTokens()
	c := completion{
		id:           newID("chatcmpl-"),
		created:      time.Now().Unix(),
		model:        req.Model,
		answer:       a,
		words:        a.text,
		finishReason: finish,
		includeUsage: req.includeUsage(),
		usage: usage{
			PromptTokens:     prompt,
			CompletionTokens: out,
			TotalTokens:      prompt + out,
		},
	}
	c.usage.PromptTokensDetails.CachedTokens = cached
	c.usage.CompletionTokensDetails.ReasoningTokens = len(a.thinking)
	return c
}

// usage is OpenAI's token usage object.
type usage struct {
	PromptTokens            int                     `json:"prompt_tokens"`
	CompletionTokens        int                     `json:"completion_tokens"`
	TotalTokens             int                     `json:"total_tokens"`
	PromptTokensDetails     promptTokensDetails     `json:"prompt_tokens_details"`
	CompletionTokensDetails completionTokensDetails `json:"completion_tokens_details"`
}

type promptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

type completionTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// chatCompletion is the non-streaming response body.
type chatCompletion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	Choices           []choice `json:"choices"`
	Usage             usage    `json:"usage"`
	SystemFingerprint string   `json:"system_fingerprint"`
}

type choice struct {
	Index        int              `json:"index"`
	Message      assistantMessage `json:"message"`
	Logprobs     *struct{}        `json:"logprobs"`
	FinishReason string           `json:"finish_reason"`
}

type assistantMessage struct {
	Role             string            `json:"role"`
	Content          *string           `json:"content"`
	Refusal          *string           `json:"refusal"`
	Reasoning        string            `json:"reasoning,omitempty"`
	ReasoningDetails []reasoningDetail `json:"reasoning_details,omitempty"`
	ToolCalls        []toolCall        `json:"tool_calls,omitempty"`
}

// reasoningDetail is OpenRouter's reasoning_details entry.
type reasoningDetail struct {
	Type   string `json:"type"`
	Text   string `json:"text"`
	Format string `json:"format"`
	Index  int    `json:"index"`
}

type toolCall struct {
	Index    *int   `json:"index,omitempty"` // in stream deltas only
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// toolCalls are the answer's tool calls as OpenAI sends them.
func (c completion) toolCalls() []toolCall {
	if c.answer.tool == nil {
		return nil
	}
	tc := toolCall{ID: c.answer.tool.ID, Type: "function"}
	tc.Function.Name, tc.Function.Arguments = c.answer.tool.Name, string(c.answer.tool.Input)
	return []toolCall{tc}
}

func (c completion) reasoning() (string, []reasoningDetail) {
	if c.answer.thinking == nil {
		return "", nil
	}
	text := strings.Join(c.answer.thinking, " ")
	return text, []reasoningDetail{{Type: "reasoning.text", Text: text, Format: "unknown"}}
}

// response is the non-streaming chat.completion body.
func (c completion) response() chatCompletion {
	return chatCompletion{
		ID:      c.id,
		Object:  "chat.completion",
		Created: c.created,
		Model:   c.model,
		Choices: []choice{{
			Message:      c.message(),
			FinishReason: c.finishReason,
		}},
		Usage:             c.usage,
		SystemFingerprint: systemFingerprint,
	}
}

func (c completion) message() assistantMessage {
	m := assistantMessage{Role: "assistant", ToolCalls: c.toolCalls()}
	if len(c.words) > 0 || m.ToolCalls == nil {
		text := strings.Join(c.words, " ")
		m.Content = &text
	}
	m.Reasoning, m.ReasoningDetails = c.reasoning()
	return m
}

// chunk is one chat.completion.chunk of a stream.
type chunk struct {
	ID                string        `json:"id"`
	Object            string        `json:"object"`
	Created           int64         `json:"created"`
	Model             string        `json:"model"`
	SystemFingerprint string        `json:"system_fingerprint"`
	Choices           []chunkChoice `json:"choices"`
	// Usage is omitted (nil), null (nullJSON) or a *usage.
	Usage any `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int       `json:"index"`
	Delta        delta     `json:"delta"`
	Logprobs     *struct{} `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

type delta struct {
	Role             string            `json:"role,omitempty"`
	Content          *string           `json:"content,omitempty"`
	Reasoning        string            `json:"reasoning,omitempty"`
	ReasoningDetails []reasoningDetail `json:"reasoning_details,omitempty"`
	ToolCalls        []toolCall        `json:"tool_calls,omitempty"`
}

var nullJSON = json.RawMessage("null")

// chunk returns a chunk with one choice holding d, or none when d is nil.
func (c completion) chunk(d *delta, finishReason string) chunk {
	ch := chunk{
		ID:                c.id,
		Object:            "chat.completion.chunk",
		Created:           c.created,
		Model:             c.model,
		SystemFingerprint: systemFingerprint,
		Choices:           []chunkChoice{},
	}
	if c.includeUsage {
		ch.Usage = nullJSON
	}
	if d != nil {
		choice := chunkChoice{Delta: *d}
		if finishReason != "" {
			choice.FinishReason = &finishReason
		}
		ch.Choices = append(ch.Choices, choice)
	}
	return ch
}

// chunks returns the stream's chunks in order: role, one per reasoning
// word, one per word (the content chunks, at indexes 1 to len(c.words)
// without reasoning), the tool calls, finish and, when requested, usage.
func (c completion) chunks() []chunk {
	empty := ""
	out := make([]chunk, 0, len(c.words)+len(c.answer.thinking)+4)
	out = append(out, c.chunk(&delta{Role: "assistant", Content: &empty}, ""))
	for i, w := range c.answer.thinking {
		if i > 0 {
			w = " " + w
		}
		out = append(out, c.chunk(&delta{Reasoning: w, ReasoningDetails: []reasoningDetail{{Type: "reasoning.text", Text: w, Format: "unknown"}}}, ""))
	}
	for _, tc := range c.toolCalls() {
		zero, args := 0, tc.Function.Arguments
		tc.Index, tc.Function.Arguments = &zero, ""
		out = append(out, c.chunk(&delta{ToolCalls: []toolCall{tc}}, ""))
		var rest toolCall
		rest.Index, rest.Function.Arguments = &zero, args
		out = append(out, c.chunk(&delta{ToolCalls: []toolCall{rest}}, ""))
	}
	for i, w := range c.words {
		if i < len(c.words)-1 {
			w += " "
		}
		out = append(out, c.chunk(&delta{Content: &w}, ""))
	}
	out = append(out, c.chunk(&delta{}, c.finishReason))
	if c.includeUsage {
		u := c.chunk(nil, "")
		u.Usage = &c.usage
		out = append(out, u)
	}
	return out
}
