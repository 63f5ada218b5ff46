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
	words        []string
	finishReason string
	usage        usage
	includeUsage bool
}

// newCompletion echoes the request's last user message.
func newCompletion(req chatRequest) completion {
	words, truncated := req.replyWords()
	finish := "stop"
	if truncated {
		finish = "length"
	}
	prompt := req.promptTokens()
	return completion{
		id:           newID("chatcmpl-"),
		created:      time.Now().Unix(),
		model:        req.Model,
		words:        words,
		finishReason: finish,
		includeUsage: req.includeUsage(),
		usage: usage{
			PromptTokens:     prompt,
			CompletionTokens: len(words),
			TotalTokens:      prompt + len(words),
		},
	}
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
	Role    string  `json:"role"`
	Content string  `json:"content"`
	Refusal *string `json:"refusal"`
}

// response is the non-streaming chat.completion body.
func (c completion) response() chatCompletion {
	return chatCompletion{
		ID:      c.id,
		Object:  "chat.completion",
		Created: c.created,
		Model:   c.model,
		Choices: []choice{{
			Message:      assistantMessage{Role: "assistant", Content: strings.Join(c.words, " ")},
			FinishReason: c.finishReason,
		}},
		Usage:             c.usage,
		SystemFingerprint: systemFingerprint,
	}
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
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
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

// chunks returns the stream's chunks in order: role, one per word (the
// content chunks, at indexes 1 to len(c.words)), finish and, when
// requested, usage.
func (c completion) chunks() []chunk {
	empty := ""
	out := make([]chunk, 0, len(c.words)+3)
	out = append(out, c.chunk(&delta{Role: "assistant", Content: &empty}, ""))
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
