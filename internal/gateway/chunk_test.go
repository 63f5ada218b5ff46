package gateway

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSpliceMatchesAFullRewrite(t *testing.T) {
	t.Parallel()
	idn := newIdentity("gen-1", "author/m\"odel", "prov")
	cases := []string{
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}`,
		`{"model":"m","choices":[],"id":"x","usage":{"prompt_tokens":1}}`,
		`{ "id" : "a" , "model":"b","provider":"old","choices":[{"delta":{"content":"}"}}] }`,
		`{"id":"a","model":{"nested":"odd"},"choices":[]}`,
		`{"id":"a","model":"m","choices":[],"usage":null}`,
		`{"usage" : null , "id":"a","model":"m","choices":[]}`,
		`{"id":"a", "usage":{"prompt_tokens":1,"x":[1,{"y":"}"}]} ,"model":"m","choices":[]}`,
	}
	for _, c := range cases {
		f, err := parseChunk([]byte(c))
		require.NoError(t, err, c)
		out, ok := idn.splice([]byte(c), f)
		require.True(t, ok, c)
		var got map[string]any
		require.NoError(t, json.Unmarshal(out, &got), "%s → %s", c, out)
		var want map[string]any
		require.NoError(t, json.Unmarshal([]byte(c), &want))
		want["id"], want["model"], want["provider"] = "gen-1", "author/m\"odel", "prov"
		delete(want, "usage") // only Perpetuo's last chunk carries usage
		require.Equal(t, want, got, "%s → %s", c, out)
	}
	f, err := parseChunk([]byte(`{"choices":[]}`))
	require.NoError(t, err)
	_, ok := idn.splice([]byte(`{"choices":[]}`), f)
	require.False(t, ok, "a chunk without id falls back to the general rewrite")
}

func BenchmarkSplice(b *testing.B) {
	idn := newIdentity("gen-01M8A3SVY9YHV056SE5GEPQ61J", "openai/gpt-4o-mini", "openai")
	c := []byte(`{"id":"chatcmpl-AbC","object":"chat.completion.chunk","created":1732550000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}],"usage":null}`)
	b.ReportAllocs()
	for b.Loop() {
		f, err := parseChunk(c)
		if err != nil {
			b.Fatal(err)
		}
		_ = f.choices.Array()
		_, _ = idn.splice(c, f)
	}
}

func TestUsageChunkIsWhatMarshalWrites(t *testing.T) {
	// The reference: the struct the usage chunk was marshalled from.
	type reference struct {
		chunkHead
		Choices []struct{}      `json:"choices"`
		Usage   json.RawMessage `json:"usage"`
	}
	usage := []byte(`{"prompt_tokens":92,"completion_tokens":30,"total_tokens":122,"cost":0.000192,"is_byok":false}`)
	for _, h := range []chunkHead{
		{ID: "gen-01M98759SHTYWB71XBFC59K5XX", Object: "chat.completion.chunk", Created: 1796640000, Model: "openai/gpt-4o", Provider: "openai"},
		{ID: "gen-1", Object: "chat.completion.chunk", Created: 0, Model: "no provider served it"},
		{ID: "gen-2", Object: "chat.completion.chunk", Created: -1, Model: "a \"quoted\" <model> & \\ é \u2028 \x01 \xff", Provider: "p\n"},
	} {
		want, err := json.Marshal(reference{chunkHead: h, Choices: []struct{}{}, Usage: usage})
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendUsageChunk(nil, h, usage)))
	}
}
