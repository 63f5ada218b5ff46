package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/perpetuo/perpetuo/gen/api"
)

// chatBody is a typical request: a system prompt, a few turns, options.
var chatBody = []byte(`{"model":"openai/gpt-4o-mini","max_tokens":256,"temperature":0.7,"stream":false,
"provider":{"order":["openai"],"allow_fallbacks":true},"user":"u-42","session_id":"s-1",
"messages":[{"role":"system","content":"` + strings.Repeat("You are a helpful assistant. ", 20) + `"},
{"role":"user","content":"` + strings.Repeat("Tell me about the weather in Lisbon. ", 10) + `"},
{"role":"assistant","content":"` + strings.Repeat("It is sunny and mild. ", 10) + `"},
{"role":"user","content":[{"type":"text","text":"And tomorrow?"}]}]}`)

// BenchmarkValidateChatRequest measures what validation costs on the chat
// route as the validate middleware runs it: the compiled body validator
// and kin-openapi on the parameters (bench/ compares sizes: go run ./bench
// -validation).
func BenchmarkValidateChatRequest(b *testing.B) {
	spec, err := api.GetSwagger()
	if err != nil {
		b.Fatal(err)
	}
	sr, err := newSpecRouter(spec)
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://gw/v1/chat/completions", nil)
	req.Header.Set("Content-Type", "application/json")
	route, params, err := sr.router.FindRoute(req)
	if err != nil {
		b.Fatal(err)
	}
	body := sr.bodies[route.Operation]
	b.ReportAllocs()
	for b.Loop() {
		if err := body.v.Validate(chatBody); err != nil {
			b.Fatal(err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: sr.params}
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeChatRequest is the generated strict handler's decode of
// the same body, for comparison.
func BenchmarkDecodeChatRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var r api.ChatCompletionRequest
		if err := json.NewDecoder(bytes.NewReader(chatBody)).Decode(&r); err != nil {
			b.Fatal(err)
		}
	}
}
