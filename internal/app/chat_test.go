package app

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
	perpetuo "github.com/perpetuo/perpetuo/sdk/go"
)

// secretPrompt must never reach the database.
const secretPrompt = "zebra quartz marmalade sonnet"

func TestChatCompletionNonStreamingWithOpenAIClient(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	var httpResp *http.Response
	resp, err := e.openai.Chat.Completions.New(context.Background(), userMessage(secretPrompt), option.WithResponseInto(&httpResp))
	require.NoError(t, err)

	require.Equal(t, secretPrompt, resp.Choices[0].Message.Content)
	require.True(t, strings.HasPrefix(resp.ID, "gen-"), resp.ID)
	require.Equal(t, resp.ID, httpResp.Header.Get("X-Generation-Id"))
	require.Equal(t, "mock/echo", resp.Model)
	require.Equal(t, `"mock"`, resp.JSON.ExtraFields["provider"].Raw())
	// The mock counts words + 4 per message: 4+4 prompt tokens, 4 completion.
	require.EqualValues(t, 8, resp.Usage.PromptTokens)
	require.EqualValues(t, 4, resp.Usage.CompletionTokens)
	// 8 × 0.000001 + 4 × 0.000002, rendered exactly.
	require.Equal(t, "0.000016", resp.Usage.JSON.ExtraFields["cost"].Raw())
	require.Equal(t, "false", resp.Usage.JSON.ExtraFields["is_byok"].Raw())

	g := e.generation(resp.ID) // readable at once, before any flush
	require.Equal(t, "mock/echo", g.Model)
	require.Equal(t, "mock", *g.ProviderName)
	require.Equal(t, 8, g.TokensPrompt)
	require.Equal(t, 4, g.TokensCompletion)
	require.Equal(t, "0.000016", g.TotalCost.String())
	require.False(t, g.Streamed)
	require.Equal(t, 200, g.Status)
	require.Equal(t, "stop", *g.FinishReason)
	require.Len(t, g.Attempts, 1)
	require.Equal(t, 200, g.Attempts[0].Status)

	row := e.storedRow(resp.ID)
	require.NotContains(t, row, "zebra", "the stored record must hold no prompt or completion text")
	require.Contains(t, row, `"cost_usd":0.000016`)
	g2 := e.generation(resp.ID) // and again from the database
	require.Equal(t, g.TotalCost.String(), g2.TotalCost.String())
}

func TestChatCompletionStreamingWithOpenAIClient(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	stream := e.openai.Chat.Completions.NewStreaming(context.Background(), userMessage(secretPrompt))
	defer stream.Close()
	acc := openai.ChatCompletionAccumulator{}
	var chunks []openai.ChatCompletionChunk
	for stream.Next() {
		c := stream.Current()
		acc.AddChunk(c)
		chunks = append(chunks, c)
	}
	require.NoError(t, stream.Err())
	require.Equal(t, secretPrompt, acc.Choices[0].Message.Content)

	id := chunks[0].ID
	require.True(t, strings.HasPrefix(id, "gen-"))
	for _, c := range chunks {
		require.Equal(t, id, c.ID, "every chunk carries the generation id")
		require.Equal(t, "mock/echo", c.Model)
	}
	last := chunks[len(chunks)-1]
	require.Empty(t, last.Choices, "usage rides a last chunk with no choices")
	require.EqualValues(t, 8, last.Usage.PromptTokens)
	require.EqualValues(t, 4, last.Usage.CompletionTokens)
	require.Equal(t, "0.000016", last.Usage.JSON.ExtraFields["cost"].Raw())

	g := e.generation(id)
	require.True(t, g.Streamed)
	require.False(t, g.Cancelled)
	require.Equal(t, "0.000016", g.TotalCost.String())
	require.NotNil(t, g.TimeToFirstToken)
	require.Equal(t, "stop", *g.FinishReason)
	require.NotContains(t, e.storedRow(id), "zebra")
}

func TestOpenRouterPrefixServesTheSameAPI(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	c := openai.NewClient(option.WithBaseURL(e.srv.URL+"/api/v1"), option.WithAPIKey(e.key), option.WithMaxRetries(0))
	resp, err := c.Chat.Completions.New(context.Background(), userMessage("via openrouter path"))
	require.NoError(t, err)
	require.Equal(t, "via openrouter path", resp.Choices[0].Message.Content)
}

// TestSSEChunksArriveOneByOne proves nothing in the middleware chain buffers
// a stream: with the upstream pacing words 100ms apart, the first word must
// reach the client long before the last.
func TestSSEChunksArriveOneByOne(t *testing.T) {
	t.Parallel()
	e := setup(t, map[string]http.Handler{"mock": mockupstream.New(mockupstream.Config{TokensPerSecond: 10})})
	body := `{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":"one two three four five six"}]}`
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.key)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var arrivals []time.Duration
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"content":"`) && !strings.Contains(sc.Text(), `"content":""`) {
			arrivals = append(arrivals, time.Since(start))
		}
	}
	require.Len(t, arrivals, 6)
	total := time.Since(start)
	require.Less(t, arrivals[0], total/2, "first chunk at %v of %v: the stream was buffered", arrivals[0], total)
	for i := 1; i < len(arrivals); i++ {
		require.Greater(t, arrivals[i]-arrivals[0], time.Duration(i)*50*time.Millisecond, "chunk %d arrived with the first", i)
	}
}

// TestRequestReachesUpstreamWithoutExtensions checks what the upstream gets:
// the upstream model id, unknown fields passed through, Perpetuo's and
// OpenRouter's extensions removed, usage requested on streams.
func TestRequestReachesUpstreamWithoutExtensions(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []map[string]any
	capture := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var doc map[string]any
		_ = json.Unmarshal(b, &doc)
		mu.Lock()
		got = append(got, doc)
		mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		mockupstream.New(mockupstream.Config{}).ServeHTTP(w, r)
	})
	e := setup(t, map[string]http.Handler{"mock": capture})
	for _, stream := range []string{"false", "true"} {
		body := `{"model":"mock/echo","models":["mock/echo"],"stream":` + stream + `,"messages":[{"role":"user","content":"hi"}],
		  "provider":{"allow_fallbacks":true},"strategy":"cheapest","session_id":"s1","metadata":{"team":"a"},
		  "usage":{"include":true},"transforms":[],"route":"fallback","stream_options":{"include_usage":false},
		  "user":"u-1","temperature":0.5,"x_vendor_knob":{"deep":[1,2]}}`
		status, _, _ := e.postRaw("/v1/chat/completions", body)
		require.Equal(t, 200, status)
	}
	require.Len(t, got, 2)
	for i, doc := range got {
		require.Equal(t, "echo", doc["model"])
		for _, f := range []string{"models", "provider", "strategy", "session_id", "metadata", "usage", "transforms", "route"} {
			require.NotContains(t, doc, f)
		}
		require.Equal(t, "u-1", doc["user"])
		require.Equal(t, 0.5, doc["temperature"])
		require.Equal(t, map[string]any{"deep": []any{1.0, 2.0}}, doc["x_vendor_knob"])
		if i == 1 {
			require.Equal(t, map[string]any{"include_usage": true}, doc["stream_options"])
		} else {
			require.NotContains(t, doc, "stream_options")
		}
	}
}

func TestKeyReportsUsage(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	// Read after each answer: a client holding its whole answer sees its
	// spend at once, whether the record is still in memory, being written
	// or written (counted once either way).
	var resp *perpetuo.GetCurrentKeyResponse
	for i := 1; i <= 10; i++ {
		_, err := e.openai.Chat.Completions.New(context.Background(), userMessage(secretPrompt))
		require.NoError(t, err)
		resp, err = e.sdk.GetCurrentKeyWithResponse(context.Background())
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode(), "%s", resp.Body)
		k := resp.JSON200.Data
		want := decimal.RequireFromString("0.000016").Mul(decimal.NewFromInt(int64(i)))
		for _, got := range []string{k.Usage.String(), k.UsageDaily.String(), k.UsageWeekly.String(), k.UsageMonthly.String()} {
			require.True(t, decimal.RequireFromString(got).Equal(want), "after %d requests: usage %s, want %s", i, got, want)
		}
	}
	k := resp.JSON200.Data
	require.Equal(t, "0", k.ByokUsage.String())
	require.Equal(t, "owner", string(k.Role))
	require.Nil(t, k.Limit)
	require.NotContains(t, string(resp.Body), e.key[6:], "the key's secret must never be returned")
}

func TestModelsListsOnlyRoutableModels(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	resp, err := e.sdk.ListModelsWithResponse(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode())
	var ids []string
	for _, m := range resp.JSON200.Data {
		ids = append(ids, m.Id)
	}
	require.ElementsMatch(t, []string{"mock/echo", "test/claude", "test/duo", "test/gemini", "test/leaky", "test/mistral", "test/trio"}, ids, "test/unreachable has no credential")
	require.Equal(t, "0.000001", resp.JSON200.Data[0].Pricing.Prompt)
}
