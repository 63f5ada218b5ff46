package providers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/httpx"
	"github.com/perpetuo/perpetuo/internal/jsonedit"
	"github.com/perpetuo/perpetuo/internal/sse"
)

// maxUpstreamBody bounds a non-streaming upstream response.
const maxUpstreamBody = 32 << 20

// extensionFields are Perpetuo's and OpenRouter's request fields; OpenAI-style
// upstreams reject or misread them, so they are removed before relaying.
// Everything else the client sent passes through untouched.
var extensionFields = []string{
	"models", "provider", "strategy", "session_id", "metadata", "usage",
	"transforms", "route", "preset", "stream_options",
}

// OpenAI speaks the OpenAI Chat Completions API (OpenAI, Azure-compatible
// proxies, Groq, Together, Mistral, DeepSeek, vLLM, Perpetuo's mock, ...).
type OpenAI struct {
	trusted, guarded *http.Client
	azure            bool // Azure OpenAI: deployment URLs, api-version, the api-key header
}

// DefaultAzureAPIVersion is the Azure OpenAI API version used when the
// credential names none (the latest generally available one).
const DefaultAzureAPIVersion = "2024-10-21"

// NewAzure returns the Azure OpenAI adapter: OpenAI's wire format at
// {base}/openai/deployments/{deployment}/chat/completions?api-version=...,
// authenticated with the api-key header. The base URL is the resource's
// endpoint (https://{resource}.openai.azure.com).
func NewAzure(trusted, guarded *http.Client) *OpenAI {
	return &OpenAI{trusted: trusted, guarded: guarded, azure: true}
}

// NewOpenAI returns an adapter calling operator base URLs with trusted and
// workspace ones (Call.Untrusted) with guarded; without guarded, untrusted
// calls fail rather than go out unchecked.
func NewOpenAI(trusted, guarded *http.Client) *OpenAI {
	return &OpenAI{trusted: trusted, guarded: guarded}
}

// UpstreamBody rewrites the client's request for an OpenAI-style upstream:
// extension fields removed, the upstream model id substituted, stream set
// to what the adapter reads and, for streams, usage requested so the last
// chunk carries it (unless the provider refuses stream_options: compat's
// stream_usage); more are the gateway's own edits (the output cap, the
// parameters the endpoint does not support), made in the same pass.
func UpstreamBody(body []byte, upstreamModel string, stream bool, compat catalog.Compat, more ...jsonedit.Edit) ([]byte, error) {
	edits := make([]jsonedit.Edit, 0, 16) // a constant size keeps it on the stack
	for _, f := range extensionFields {
		edits = append(edits, jsonedit.Delete(f))
	}
	edits = append(edits, jsonedit.String("model", upstreamModel), jsonedit.Bool("stream", stream))
	if stream && (compat.StreamUsage == "" || compat.StreamUsage == catalog.StreamUsageAsked) {
		// Overrides the deletion of the client's stream_options.
		edits = append(edits, jsonedit.Raw("stream_options", includeUsage))
	}
	out, err := jsonedit.Object(body, append(edits, more...)...)
	if err != nil {
		return nil, fmt.Errorf("rewrite request: %w", err)
	}
	return out, nil
}

// includeUsage asks a streaming upstream to report usage in its last chunk.
var includeUsage = []byte(`{"include_usage":true}`)

func (o *OpenAI) do(ctx context.Context, c Call) (*http.Response, error) {
	url, err := o.url(c)
	if err != nil {
		return nil, &Error{Client: misconfigured(c.Provider), Retryable: true, Class: NotSent}
	}
	body, err := UpstreamBody(c.Body, c.UpstreamModel, c.Stream, c.Compat, c.Edits...)
	if err != nil {
		return nil, fmt.Errorf("build upstream body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &Error{Client: misconfigured(c.Provider).WithCause(err), Retryable: true, Class: NotSent}
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	switch h := c.Compat.AuthHeader; {
	case c.APIKey == "":
	case o.azure:
		req.Header.Set("api-key", c.APIKey)
	case h == "" || strings.EqualFold(h, "authorization"):
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	default:
		req.Header.Set(h, c.APIKey)
	}
	return send(ctx, c, o.trusted, o.guarded, req)
}

// url is the chat completions URL of c: the base URL's, or for Azure the
// deployment's with the API version.
func (o *OpenAI) url(c Call) (string, error) {
	if !o.azure {
		return endpointURL(c.BaseURL, "/chat/completions")
	}
	deployment := c.Deployment
	if deployment == "" {
		deployment = c.UpstreamModel
	}
	u, err := endpointURL(c.BaseURL, "/openai/deployments/"+neturl.PathEscape(deployment)+"/chat/completions")
	if err != nil {
		return "", err
	}
	pu, err := neturl.Parse(u)
	if err != nil {
		return "", err
	}
	q := pu.Query()
	q.Set("api-version", cmpOr(c.APIVersion, DefaultAzureAPIVersion))
	pu.RawQuery = q.Encode()
	return pu.String(), nil
}

// Complete implements Adapter.
func (o *OpenAI) Complete(ctx context.Context, c Call) (*Completion, error) {
	resp, err := o.do(ctx, c)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := httpx.ReadAll(io.LimitReader(resp.Body, maxUpstreamBody), min(resp.ContentLength, maxUpstreamBody))
	if err != nil {
		return nil, answerError(ctx, c.Provider, resp.StatusCode, fmt.Errorf("read response: %w", err))
	}
	top, valid := members(b, "id", "choices", "usage", "error")
	id, choices, usage, topErr := top[0], top[1], top[2], top[3]
	if !valid || !choices.IsArray() {
		return nil, Malformed(c.Provider, resp.StatusCode)
	}
	first := choices.Get("0")
	comp := &Completion{
		UpstreamID:   id.String(),
		FinishReason: first.Get("finish_reason").String(),
	}
	comp.Usage, comp.HasUsage = ParseUsage(usage)
	if comp.FinishReason == "error" {
		e := first.Get("error")
		if !e.IsObject() {
			e = topErr
		}
		if !e.IsObject() {
			e.Raw = "{}"
		}
		comp.Failure = inStreamError(c, []byte(`{"error":`+e.Raw+`}`))
	}
	if c.Compat.ReasoningField == catalog.ReasoningContent {
		b = renameReasoning(b, "message")
	}
	comp.Body = b
	return comp, nil
}

// members returns the top-level members of the JSON object doc named
// names, the first of each as gjson.Get finds it, in the one pass that also
// checks the whole of doc is valid JSON (valid false when it is not, or is
// no object). A gjson.Get per name would scan doc again each time, to its
// end for a member near it. The results hold copies, never doc's memory.
func members(doc []byte, names ...string) (out []gjson.Result, valid bool) {
	out = make([]gjson.Result, len(names))
	err := jsonedit.Members(doc, func(k, v []byte) bool {
		for i, n := range names {
			if string(k) == n && !out[i].Exists() {
				out[i] = gjson.ParseBytes(v)
				break
			}
		}
		return true // to the end, which checks the rest
	})
	return out, err == nil
}

// Stream implements Adapter. It returns once the upstream accepted the
// request; chunks are read lazily by Next.
func (o *OpenAI) Stream(ctx context.Context, c Call) (Stream, error) {
	c.Stream = true
	resp, err := o.do(ctx, c)
	if err != nil {
		return nil, err
	}
	c.Body = nil // the stream outlives the call; it needs only who was called
	return &openAIStream{ctx: ctx, call: c, status: resp.StatusCode, body: &streamBody{rc: resp.Body}, r: sse.NewReader(resp.Body)}, nil
}

type openAIStream struct {
	ctx    context.Context
	call   Call
	status int // the upstream's HTTP status, for errors after it
	body   *streamBody
	r      *sse.Reader
}

// Next returns the next chunk's JSON; io.EOF after [DONE]. A stream that ends
// without [DONE] is an error: the upstream was cut off. A chunk that is not
// JSON is one too: relayed, it would reach the client as a broken chunk.
func (s *openAIStream) Next() ([]byte, error) {
	for {
		ev, err := s.r.Next()
		if err == io.EOF {
			return nil, answerError(s.ctx, s.call.Provider, s.status, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return nil, answerError(s.ctx, s.call.Provider, s.status, err)
		}
		if ev.IsDone() {
			s.body.ended = true
			return nil, io.EOF
		}
		if len(ev.Data) == 0 {
			continue
		}
		// The caller validates the rest of the chunk in the pass that reads
		// it (see Stream); only what could be an error event is validated
		// here, before it is read as one.
		if !isObject(ev.Data) {
			return nil, Malformed(s.call.Provider, s.status)
		}
		if mayHoldError(ev.Data) {
			if !gjson.ValidBytes(ev.Data) {
				return nil, Malformed(s.call.Provider, s.status)
			}
			if gjson.GetBytes(ev.Data, "error").Exists() {
				return nil, inStreamError(s.call, ev.Data)
			}
		}
		// ev.Data is the caller's: the reader never reuses it.
		if s.call.Compat.ReasoningField == catalog.ReasoningContent {
			return renameReasoning(ev.Data, "delta"), nil
		}
		return ev.Data, nil
	}
}

func (s *openAIStream) Ready() bool { return s.r.Ready() }

// mayHoldError reports whether a chunk could have a member named "error":
// without the quoted name, or a \u escape that could spell it, it cannot,
// and looking the member up would walk the whole chunk for nothing.
func mayHoldError(b []byte) bool {
	return bytes.Contains(b, quotedError) || bytes.Contains(b, unicodeEscape)
}

var quotedError, unicodeEscape = []byte(`"error"`), []byte(`\u`)

// isObject reports whether valid JSON b is an object, from its first byte:
// parsing it into a gjson.Result would copy it.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

func (s *openAIStream) Close() error { return s.body.Close() }

// renameReasoning moves each choice's reasoning_content (in its message or
// delta) to reasoning, where OpenRouter's clients read it, with a
// reasoning_details entry as OpenRouter sends one.
func renameReasoning(doc []byte, in string) []byte {
	n := int(gjson.GetBytes(doc, "choices.#").Int())
	for i := range n {
		at := "choices." + strconv.Itoa(i) + "." + in
		rc := gjson.GetBytes(doc, at+".reasoning_content")
		if !rc.Exists() {
			continue
		}
		out, err := sjson.DeleteBytes(doc, at+".reasoning_content")
		if err != nil {
			continue
		}
		if rc.Type == gjson.String && !gjson.GetBytes(out, at+".reasoning").Exists() {
			out, _ = sjson.SetBytes(out, at+".reasoning", rc.Str)
			detail := map[string]string{"type": "reasoning.text", "text": rc.Str, "format": "unknown"}
			out, _ = sjson.SetBytes(out, at+".reasoning_details", []any{detail})
		}
		doc = out
	}
	return doc
}

// ParseUsage reads an OpenAI usage object.
func ParseUsage(u gjson.Result) (Usage, bool) {
	if !u.IsObject() {
		return Usage{}, false
	}
	// One pass over the object and its details objects: a lookup per field
	// walked it from the start each time. The first of duplicate members
	// counts, and a details member without the field leaves it to a later
	// one, as a lookup finds them.
	var (
		out                                               Usage
		prompt, completion, reasoning, cached, hit, write gjson.Result
	)
	u.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "prompt_tokens":
			first(&prompt, v)
		case "completion_tokens":
			first(&completion, v)
		case "prompt_cache_hit_tokens": // DeepSeek's name
			first(&hit, v)
		case "prompt_tokens_details":
			v.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "cached_tokens":
					first(&cached, v)
				case "cache_write_tokens": // OpenRouter's name; OpenAI itself bills no cache writes.
					first(&write, v)
				}
				return true
			})
		case "completion_tokens_details":
			v.ForEach(func(k, v gjson.Result) bool {
				if k.Str == "reasoning_tokens" {
					first(&reasoning, v)
				}
				return true
			})
		}
		return true
	})
	if !cached.Exists() {
		cached = hit
	}
	out.PromptTokens, out.CompletionTokens = int(prompt.Int()), int(completion.Int())
	out.ReasoningTokens, out.CachedTokens, out.CacheWriteTokens = int(reasoning.Int()), int(cached.Int()), int(write.Int())
	return out, true
}

// first keeps the first value seen for a member.
func first(dst *gjson.Result, v gjson.Result) {
	if !dst.Exists() {
		*dst = v
	}
}
