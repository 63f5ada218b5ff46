package main

import (
	"fmt"
	"strings"
)

// prompt is the user message of every request: about 30 words, which the
// mock echoes back as the reply.
const prompt = "Summarise in two short sentences why connection pooling and careful timeouts matter " +
	"for an API gateway that relays chat completions to several upstream language model providers under heavy load today."

// maxTokens is the max_tokens of every request; above the prompt's length,
// so the whole prompt is echoed.
const maxTokens = 50

// Models requested directly from the mock (and through the bare proxy) and
// through the gateway.
const (
	directModel  = "echo"
	gatewayModel = "mock/echo"
)

// expectedReply is what the mock answers: the prompt's words, single-spaced,
// at most maxTokens of them.
var expectedReply = func() string {
	words := strings.Fields(prompt)
	return strings.Join(words[:min(len(words), maxTokens)], " ")
}()

// chatBody is the JSON request for model, about 400 bytes plus pad bytes of
// words in the system message (the mock echoes only the user message);
// streaming requests also ask for the usage chunk, as most streaming
// clients do.
func chatBody(model string, stream bool, pad int) []byte {
	system := "You are a concise technical assistant."
	if pad > 0 {
		var b strings.Builder
		b.Grow(len(system) + pad + 16)
		b.WriteString(system)
		for b.Len() < len(system)+pad {
			b.WriteString(" context")
		}
		system = b.String()
	}
	b := fmt.Sprintf(`{"model":%q,"messages":[`+
		`{"role":"system","content":%q},`+
		`{"role":"user","content":%q}],"max_tokens":%d,"temperature":0.2`, model, system, prompt, maxTokens)
	if stream {
		b += `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return []byte(b + "}")
}
