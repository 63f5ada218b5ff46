package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// anthropicClient is the Anthropic Go SDK pointed at the gateway, with the
// Perpetuo key as its API key (sent as x-api-key).
func (e *env) anthropicClient(key string) anthropic.Client {
	return anthropic.NewClient(option.WithBaseURL(e.srv.URL), option.WithAPIKey(key), option.WithMaxRetries(0))
}

// TestAnthropicSDKThroughMessages: the Anthropic SDK's Messages calls go
// through /v1/messages on the same pipeline, served by an OpenAI-family
// endpoint (mock/echo) and by an Anthropic one (test/claude): text,
// streaming, tools, thinking round-tripped with its signature, records and
// exact cost, and errors as the SDK's typed error.
func TestAnthropicSDKThroughMessages(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	ctx := context.Background()
	client := e.anthropicClient(e.key)
	for _, model := range []string{"mock/echo", "test/claude"} {
		t.Run(model, func(t *testing.T) {
			cheapest := option.WithJSONSet("strategy", "cheapest")
			msg, err := client.Messages.New(ctx, anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 64,
				System:   []anthropic.TextBlockParam{{Text: "be brief"}},
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello through the skin"))}}, cheapest)
			require.NoError(t, err)
			require.Len(t, msg.Content, 1)
			require.Equal(t, "text", msg.Content[0].Type)
			require.Equal(t, "hello through the skin", msg.Content[0].Text)
			require.Equal(t, anthropic.StopReasonEndTurn, msg.StopReason)
			// system 2+4, user 4+4 words and message tokens; 4 out.
			require.Equal(t, int64(14), msg.Usage.InputTokens)
			require.Equal(t, int64(4), msg.Usage.OutputTokens)
			g := e.waitGeneration(msg.ID)
			require.Equal(t, model, g.Model)
			require.Equal(t, 14, g.PromptTokens)
			require.Equal(t, g.Cost.String(), gjson.Get(msg.RawJSON(), "usage.cost").Raw, "the exact cost rides the usage")

			// Stream, accumulated by the SDK.
			st := client.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 64,
				Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("a streamed message"))}}, cheapest)
			defer st.Close()
			acc := anthropic.Message{}
			var events []string
			for st.Next() {
				ev := st.Current()
				events = append(events, ev.Type)
				require.NoError(t, acc.Accumulate(ev))
			}
			require.NoError(t, st.Err())
			require.Equal(t, "a streamed message", acc.Content[0].Text)
			require.Equal(t, int64(3), acc.Usage.OutputTokens)
			require.Equal(t, anthropic.StopReasonEndTurn, acc.StopReason)
			require.Equal(t, "message_start", events[0])
			require.Equal(t, "message_stop", events[len(events)-1])
			require.Contains(t, events, "content_block_start")
			require.Contains(t, events, "message_delta")
			e.waitGeneration(acc.ID)
		})
	}

	// Tools and thinking against Anthropic: the thinking block goes back
	// with the tool result, and the upstream accepts its signature, so it
	// survived Messages → Chat Completions → Messages both ways.
	tool := anthropic.ToolUnionParamOfTool(anthropic.ToolInputSchemaParam{Properties: map[string]any{"query": map[string]any{"type": "string"}}}, "get_weather")
	params := anthropic.MessageNewParams{Model: "test/claude", MaxTokens: 4000, Tools: []anthropic.ToolUnionParam{tool},
		Thinking: anthropic.ThinkingConfigParamOfEnabled(2000),
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("weather in Paris"))}}
	cheapest := option.WithJSONSet("strategy", "cheapest")
	msg, err := client.Messages.New(ctx, params, cheapest)
	require.NoError(t, err)
	require.Equal(t, anthropic.StopReasonToolUse, msg.StopReason)
	require.Len(t, msg.Content, 2)
	require.Equal(t, "thinking", msg.Content[0].Type)
	require.Equal(t, "Considering weather in Paris", msg.Content[0].Thinking)
	require.NotEmpty(t, msg.Content[0].Signature)
	use := msg.Content[1]
	require.Equal(t, "tool_use", use.Type)
	require.Equal(t, "get_weather", use.Name)
	require.JSONEq(t, `{"query":"weather in Paris"}`, string(use.Input))
	params.Messages = append(params.Messages,
		anthropic.NewAssistantMessage(anthropic.NewThinkingBlock(msg.Content[0].Signature, msg.Content[0].Thinking),
			anthropic.NewToolUseBlock(use.ID, json.RawMessage(use.Input), use.Name)),
		anthropic.NewUserMessage(anthropic.NewToolResultBlock(use.ID, "sunny", false)))
	msg, err = client.Messages.New(ctx, params, cheapest)
	require.NoError(t, err)
	require.Equal(t, "Tool said: sunny", msg.Content[len(msg.Content)-1].Text)

	// Streaming the tool call: input_json_delta pieces the SDK joins.
	params.Messages = params.Messages[:1]
	st := client.Messages.NewStreaming(ctx, params, cheapest)
	defer st.Close()
	acc := anthropic.Message{}
	for st.Next() {
		require.NoError(t, acc.Accumulate(st.Current()))
	}
	require.NoError(t, st.Err())
	require.Equal(t, anthropic.StopReasonToolUse, acc.StopReason)
	last := acc.Content[len(acc.Content)-1]
	require.Equal(t, "tool_use", last.Type)
	require.JSONEq(t, `{"query":"weather in Paris"}`, string(last.Input))
	require.Equal(t, "thinking", acc.Content[0].Type)
	require.NotEmpty(t, acc.Content[0].Signature)

	// Errors: the SDK's typed error, with the envelope and Anthropic's
	// top-level type.
	wrong := e.anthropicClient("pk_wrong")
	_, err = wrong.Messages.New(ctx, anthropic.MessageNewParams{Model: "mock/echo", MaxTokens: 8,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("x"))}})
	var ae *anthropic.Error
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, 401, ae.StatusCode)
	require.Equal(t, "error", gjson.Get(ae.RawJSON(), "type").String())
	require.Equal(t, "authentication", gjson.Get(ae.RawJSON(), "error.type").String())
	_, err = client.Messages.New(ctx, anthropic.MessageNewParams{Model: "nobody/nothing", MaxTokens: 8,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("x"))}})
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, 404, ae.StatusCode)
}

// TestMessagesRequestRules: a Bearer key works as well as x-api-key, and a
// request the skin cannot translate is a 400 naming the field.
func TestMessagesRequestRules(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	status, hdr, raw := e.postRaw("/v1/messages", `{"model":"mock/echo","max_tokens":16,"messages":[{"role":"user","content":"bearer works"}]}`)
	require.Equal(t, 200, status, "%s", raw)
	require.Equal(t, "message", gjson.GetBytes(raw, "type").String())
	require.Equal(t, hdr.Get("X-Generation-Id"), gjson.GetBytes(raw, "id").String())
	require.Equal(t, "mock", gjson.GetBytes(raw, "provider").String())

	cases := []struct{ body, field string }{
		{`{"model":"mock/echo","max_tokens":16,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"n","input":{}}]}]}`, "/messages/0/content/0/type"},
		{`{"model":"mock/echo","max_tokens":16,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"%%%"}}]}]}`, "/messages/0/content/0/source/data"},
		{`{"model":"mock/echo","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":100},"messages":[{"role":"user","content":"x"}]}`, "/thinking/budget_tokens"},
		{`{"model":"mock/echo","messages":[{"role":"user","content":"x"}]}`, "/max_tokens"},
	}
	for _, c := range cases {
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/messages", strings.NewReader(c.body))
		require.NoError(t, err)
		req.Header.Set("x-api-key", e.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var doc map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
		resp.Body.Close()
		require.Equal(t, 400, resp.StatusCode, "%s: %v", c.body, doc)
		require.Equal(t, "error", doc["type"])
		requireEnvelope(t, doc, 400, "invalid_request")
		require.Equal(t, c.field, doc["error"].(map[string]any)["metadata"].(map[string]any)["field"], "%v", doc)
	}
}

// TestMessagesStreamFailureIsAnErrorEvent: an upstream cut after the
// stream began reaches the Anthropic SDK as an error event (its stream
// fails), not as a clean message_stop, and is recorded as such.
func TestMessagesStreamFailureIsAnErrorEvent(t *testing.T) {
	t.Parallel()
	e := setup(t, map[string]http.Handler{"claude": mockupstream.NewAnthropic(mockupstream.Config{MidStreamFailAfter: 2})})
	client := e.anthropicClient(e.key)
	st := client.Messages.NewStreaming(context.Background(), anthropic.MessageNewParams{Model: "test/claude", MaxTokens: 64,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("one two three four five"))}},
		option.WithJSONSet("strategy", "cheapest"), option.WithJSONSet("provider", map[string]any{"allow_fallbacks": false}))
	defer st.Close()
	acc := anthropic.Message{}
	for st.Next() {
		require.NoError(t, acc.Accumulate(st.Current()))
	}
	require.Error(t, st.Err(), "the SDK sees the failure")
	require.Contains(t, st.Err().Error(), "provider_unavailable")
	require.Equal(t, "one two", acc.Content[0].Text, "what arrived before the cut")
	g := e.waitGeneration(acc.ID)
	require.Equal(t, "provider_unavailable", g.ErrorType)
	require.Equal(t, "error", g.FinishReason)
}
