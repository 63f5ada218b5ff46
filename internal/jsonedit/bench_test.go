package jsonedit_test

import (
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/perpetuo/perpetuo/internal/jsonedit"
)

// chatRequest is a ~1 KB chat request as clients send it, with Perpetuo's
// extension fields.
var chatRequest = []byte(`{"model":"openai/gpt-4o-mini","models":["openai/gpt-4o-mini","anthropic/claude-3.5-haiku"],` +
	`"messages":[{"role":"system","content":"You are a concise assistant for a travel agency. Answer in two sentences at most and never invent prices."},` +
	`{"role":"user","content":"I would like to spend four days in Lisbon in late October. Which neighbourhoods should I stay in, and is it worth renting a car?"},` +
	`{"role":"assistant","content":"Stay in Baixa or Chiado for walking access to most sights, or Príncipe Real for a quieter base. A car is not worth it in the city; use trams, the metro and trains to Sintra and Cascais."},` +
	`{"role":"user","content":"Thanks. What about a day trip to the coast, and how early should I book the Sintra palaces? Also, any tips for eating well without tourist traps near the centre?"}],` +
	`"temperature":0.3,"top_p":0.9,"max_tokens":512,"stream":true,"stream_options":{"include_usage":false},` +
	`"provider":{"order":["openai","azure"],"allow_fallbacks":true},"metadata":{"customer":"c_123","trace":"t-9f8e7d"},` +
	`"usage":{"include":true},"session_id":"sess_42","user":"u_7"}`)

var extensionFields = []string{
	"models", "provider", "strategy", "session_id", "metadata", "usage",
	"transforms", "route", "preset", "stream_options",
}

var streamOptions = []byte(`{"include_usage":true}`)

// BenchmarkUpstreamBody compares the edits of providers.UpstreamBody as the
// sjson chain it replaced and as one Object call.
func BenchmarkUpstreamBody(b *testing.B) {
	b.Run("sjson", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(chatRequest)))
		for b.Loop() {
			out := chatRequest
			for _, f := range extensionFields {
				if gjson.GetBytes(out, f).Exists() {
					out, _ = sjson.DeleteBytes(out, f)
				}
			}
			out, _ = sjson.SetBytes(out, "model", "gpt-4o-mini-2024-07-18")
			out, _ = sjson.SetBytes(out, "stream", true)
			_, _ = sjson.SetRawBytes(out, "stream_options", streamOptions)
		}
	})
	b.Run("jsonedit", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(chatRequest)))
		for b.Loop() {
			edits := make([]jsonedit.Edit, 0, 16) // a constant size keeps it on the stack
			for _, f := range extensionFields {
				edits = append(edits, jsonedit.Delete(f))
			}
			edits = append(edits, jsonedit.String("model", "gpt-4o-mini-2024-07-18"), jsonedit.Bool("stream", true),
				jsonedit.Raw("stream_options", streamOptions))
			if _, err := jsonedit.Object(chatRequest, edits...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCapped compares the output cap edit of the gateway.
func BenchmarkCapped(b *testing.B) {
	b.Run("sjson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			body, set := chatRequest, false
			for _, f := range []string{"max_tokens", "max_completion_tokens"} {
				if gjson.GetBytes(body, f).Exists() {
					body, _ = sjson.SetBytes(body, f, 4096)
					set = true
				}
			}
			if !set {
				_, _ = sjson.SetBytes(body, "max_completion_tokens", 4096)
			}
		}
	})
	b.Run("jsonedit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jsonedit.Object(chatRequest, jsonedit.Int("max_completion_tokens", 4096).Or("max_tokens")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// chatCompletion is a ~1 KB upstream chat.completion.
var chatCompletion = []byte(`{"id":"chatcmpl-AbC123dEf456","object":"chat.completion","created":1733100000,"model":"gpt-4o-mini-2024-07-18",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"For the coast, take the train from Cais do Sodré to Cascais (about 40 minutes) and walk the seafront path to Estoril; ` +
	`in late October it is quiet and mild. Book the Pena Palace for the first slot of the day a week or two ahead, and reach Sintra by the 8:40 train. ` +
	`For food, look for tascas a few streets away from Rua Augusta and the Baixa squares, check that the menu is in Portuguese first, and try Campo de Ourique ` +
	`or the Mercado de Arroios for lunch.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":187,"completion_tokens":121,"total_tokens":308,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
	`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
	`"service_tier":"default","system_fingerprint":"fp_0ba0d124f1"}`)

var usage = []byte(`{"prompt_tokens":187,"completion_tokens":121,"total_tokens":308,"cost":0.0000999,"is_byok":false,` +
	`"cost_details":{"upstream_inference_cost":0.0000999},"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}`)

// BenchmarkCompleted compares the gateway's rewrite of a non-streaming
// response: id, model and provider set, usage replaced.
func BenchmarkCompleted(b *testing.B) {
	b.Run("sjson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := chatCompletion
			for _, kv := range [][2]string{{"id", "gen-1733100000-a1b2c3d4e5f6"}, {"model", "openai/gpt-4o-mini"}, {"provider", "openai"}} {
				out, _ = sjson.SetBytes(out, kv[0], kv[1])
			}
			_, _ = sjson.SetRawBytes(out, "usage", usage)
		}
	})
	b.Run("jsonedit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, err := jsonedit.Object(chatCompletion, jsonedit.String("id", "gen-1733100000-a1b2c3d4e5f6"),
				jsonedit.String("model", "openai/gpt-4o-mini"), jsonedit.String("provider", "openai"), jsonedit.Raw("usage", usage))
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
