package mockupstream

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/perpetuo/perpetuo/internal/sse"
)

// NewGemini returns a fake of Google's Gemini API: POST
// /v1beta/models/{model}:generateContent and
// :streamGenerateContent?alt=sse, with the API's request rules (camelCase
// members, roles user and model, function responses answering calls),
// usage metadata with cached and thought tokens, finish reasons, safety
// blocks and Google's error bodies. It plays the model New and
// NewAnthropic play (see play); the model-name suffixes of New apply,
// plus "blocked" (the prompt is refused by the safety filter). A repeated
// prefix of at least 32 tokens is reported as cachedContentTokenCount,
// as Gemini's implicit caching does.
func NewGemini(cfg Config) http.Handler {
	s := &geminiServer{server: &server{cfg: cfg, rng: newRNG(cfg.Seed)}, prefixes: map[[32]byte]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1beta/models/{call}", s.generate)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		gmError(w, http.StatusNotFound, "Requested entity was not found.")
	})
	return s.authenticate(mux)
}

type geminiServer struct {
	*server
	mu       sync.Mutex
	prefixes map[[32]byte]bool
}

// gmStatus is Google's status name for an HTTP status.
func gmStatus(code int) string {
	switch code {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	default:
		return "INTERNAL"
	}
}

// gmError writes Google's error body.
func gmError(w http.ResponseWriter, code int, message string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "message": message, "status": gmStatus(code)}})
}

// authenticate checks x-goog-api-key (or ?key=) when a key is configured.
// A wrong key is a 400 with reason API_KEY_INVALID, as Google answers it.
func (s *geminiServer) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.APIKey != "" {
			key := r.Header.Get("x-goog-api-key")
			if key == "" {
				key = r.URL.Query().Get("key")
			}
			if key == "" {
				gmError(w, http.StatusForbidden, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
				return
			}
			if subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.APIKey)) != 1 {
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": 400,
					"message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
					"details": []any{map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}}}})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// gmRequest is a generateContent request as the fake reads it; unknown
// members are refused as the API refuses them.
type gmRequest struct {
	Contents          []gmContent `json:"contents"`
	SystemInstruction *gmContent  `json:"systemInstruction"`
	Tools             []struct {
		FunctionDeclarations []struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"functionDeclarations"`
	} `json:"tools"`
	ToolConfig *struct {
		FunctionCallingConfig struct {
			Mode                 string   `json:"mode"`
			AllowedFunctionNames []string `json:"allowedFunctionNames"`
		} `json:"functionCallingConfig"`
	} `json:"toolConfig"`
	GenerationConfig *struct {
		Temperature     *float64 `json:"temperature"`
		TopP            *float64 `json:"topP"`
		TopK            *int     `json:"topK"`
		MaxOutputTokens int      `json:"maxOutputTokens"`
		StopSequences   []string `json:"stopSequences"`
		CandidateCount  int      `json:"candidateCount"`
		ThinkingConfig  *struct {
			ThinkingBudget  *int `json:"thinkingBudget"`
			IncludeThoughts bool `json:"includeThoughts"`
		} `json:"thinkingConfig"`
	} `json:"generationConfig"`
	SafetySettings json.RawMessage `json:"safetySettings"`
}

type gmContent struct {
	Role  string   `json:"role"`
	Parts []gmPart `json:"parts"`
}

type gmPart struct {
	Text       *string `json:"text"`
	Thought    bool    `json:"thought"`
	InlineData *struct {
		MimeType string `json:"mimeType"`
		Data     string `json:"data"`
	} `json:"inlineData"`
	FileData *struct {
		MimeType string `json:"mimeType"`
		FileURI  string `json:"fileUri"`
	} `json:"fileData"`
	FunctionCall *struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	} `json:"functionCall"`
	FunctionResponse *struct {
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	} `json:"functionResponse"`
	ThoughtSignature string `json:"thoughtSignature"`
}

// readGemini decodes and validates a request, returning the
// INVALID_ARGUMENT message when it breaks a rule.
func readGemini(body []byte) (gmRequest, string) {
	var req gmRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return req, fmt.Sprintf("Invalid JSON payload received. Unknown name %s: Cannot find field.", f)
		}
		return req, "Invalid JSON payload received. " + err.Error()
	}
	if len(req.Contents) == 0 {
		return req, "* GenerateContentRequest.contents: contents is not specified"
	}
	if g := req.GenerationConfig; g != nil {
		if t := g.Temperature; t != nil && (*t < 0 || *t > 2) {
			return req, fmt.Sprintf("Invalid value at 'generation_config.temperature' (%v): must be between 0 and 2", *t)
		}
		if tc := g.ThinkingConfig; tc != nil && tc.ThinkingBudget != nil && (*tc.ThinkingBudget < 0 || *tc.ThinkingBudget > 24576) {
			return req, "The thinking budget must be between 0 and 24576."
		}
	}
	calls := map[string]int{} // function name → calls awaiting a response
	for i, c := range req.Contents {
		if c.Role != "user" && c.Role != "model" {
			return req, fmt.Sprintf("Please use a valid role: user, model. (contents[%d].role %q)", i, c.Role)
		}
		if len(c.Parts) == 0 {
			return req, fmt.Sprintf("* GenerateContentRequest.contents[%d].parts: contents.parts must not be empty.", i)
		}
		for j, p := range c.Parts {
			set := 0
			for _, b := range []bool{p.Text != nil, p.InlineData != nil, p.FileData != nil, p.FunctionCall != nil, p.FunctionResponse != nil} {
				if b {
					set++
				}
			}
			if set != 1 {
				return req, fmt.Sprintf("* GenerateContentRequest.contents[%d].parts[%d].data: required oneof field 'data' must have one initialized field", i, j)
			}
			switch {
			case p.FunctionCall != nil && c.Role != "model":
				return req, fmt.Sprintf("contents[%d].parts[%d]: a function call must come from the model", i, j)
			case p.FunctionCall != nil:
				calls[p.FunctionCall.Name]++
			case p.FunctionResponse != nil:
				if calls[p.FunctionResponse.Name] == 0 {
					return req, fmt.Sprintf("Please ensure that function response turn comes immediately after a function call turn. (contents[%d].parts[%d] answers %q)", i, j, p.FunctionResponse.Name)
				}
				calls[p.FunctionResponse.Name]--
			case p.InlineData != nil && (p.InlineData.MimeType == "" || p.InlineData.Data == ""):
				return req, fmt.Sprintf("contents[%d].parts[%d].inline_data: mime_type and data are required", i, j)
			case p.FileData != nil && p.FileData.FileURI == "":
				return req, fmt.Sprintf("contents[%d].parts[%d].file_data.file_uri is required", i, j)
			}
		}
	}
	return req, ""
}

func (s *geminiServer) generate(w http.ResponseWriter, r *http.Request) {
	model, method, ok := strings.Cut(r.PathValue("call"), ":")
	stream := method == "streamGenerateContent"
	if !ok || (method != "generateContent" && !stream) {
		gmError(w, http.StatusNotFound, "Requested entity was not found.")
		return
	}
	if stream && r.URL.Query().Get("alt") != "sse" {
		gmError(w, http.StatusBadRequest, "this fake streams only with alt=sse")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		gmError(w, http.StatusBadRequest, "Request payload size exceeds the limit.")
		return
	}
	req, msg := readGemini(body)
	if msg != "" {
		gmError(w, http.StatusBadRequest, msg)
		return
	}
	p, err := s.planFor(r, model)
	if err != nil {
		gmError(w, http.StatusBadRequest, err.Error())
		return
	}
	if p.failStatus != 0 {
		gmError(w, p.failStatus, "The fake failed as asked.")
		return
	}
	rep := s.reply(req, model)
	if stream {
		s.stream(w, r, rep, p)
		return
	}
	if !sleep(r, p.latency+p.ttft) {
		return
	}
	writeJSON(w, http.StatusOK, rep.response(rep.parts(), rep.finishReason(), true))
}

// gmReply is the fake model's answer with Gemini's usage.
type gmReply struct {
	answer
	id, model       string
	blocked         bool
	prompt, cached  int
	includeThoughts bool
}

func (s *geminiServer) reply(req gmRequest, model string) gmReply {
	last := req.Contents[len(req.Contents)-1]
	t := turn{lastRole: last.Role}
	if last.Role == "model" {
		t.lastRole = "assistant"
	}
	for _, p := range last.Parts {
		switch {
		case p.Text != nil:
			t.words = append(t.words, strings.Fields(*p.Text)...)
		case p.FunctionResponse != nil:
			var res struct {
				Content string `json:"content"`
			}
			_ = json.Unmarshal(p.FunctionResponse.Response, &res)
			t.results = append(t.results, res.Content)
		case p.InlineData != nil:
			t.media = append(t.media, mediaNote("image", "", p.InlineData.MimeType))
		case p.FileData != nil:
			t.media = append(t.media, mediaNote("image", p.FileData.FileURI, ""))
		}
	}
	for _, tool := range req.Tools {
		for _, f := range tool.FunctionDeclarations {
			t.tools = append(t.tools, f.Name)
		}
	}
	if tc := req.ToolConfig; tc != nil {
		t.noTools = tc.FunctionCallingConfig.Mode == "NONE"
		if names := tc.FunctionCallingConfig.AllowedFunctionNames; len(names) > 0 {
			t.forced = names[0]
		}
	}
	rep := gmReply{id: newID("resp-"), model: model, blocked: strings.HasSuffix(model, "blocked")}
	if g := req.GenerationConfig; g != nil {
		t.stops, t.budget = g.StopSequences, g.MaxOutputTokens // thoughts count within it
		if tc := g.ThinkingConfig; tc != nil && tc.ThinkingBudget != nil && *tc.ThinkingBudget > 0 {
			t.think, rep.includeThoughts = true, tc.IncludeThoughts
		}
	}
	rep.answer = play(t, "")
	rep.prompt, rep.cached = s.promptUsage(req)
	return rep
}

// promptUsage counts the prompt (a token per word, 4 per turn and for the
// system instruction) and the cached part: every turn but the last, when
// that prefix (at least minCachedPrefix tokens) was sent before.
func (s *geminiServer) promptUsage(req gmRequest) (prompt, cached int) {
	count := func(c gmContent) int {
		n := perMessageTokens
		for _, p := range c.Parts {
			if p.Text != nil {
				n += len(strings.Fields(*p.Text))
			}
		}
		return n
	}
	prefix := 0
	if req.SystemInstruction != nil {
		prefix += count(*req.SystemInstruction)
	}
	for _, c := range req.Contents[:len(req.Contents)-1] {
		prefix += count(c)
	}
	prompt = prefix + count(req.Contents[len(req.Contents)-1])
	if prefix < minCachedPrefix {
		return prompt, 0
	}
	b, _ := json.Marshal([]any{req.SystemInstruction, req.Contents[:len(req.Contents)-1]})
	key := sha256.Sum256(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prefixes[key] {
		return prompt, prefix
	}
	s.prefixes[key] = true
	return prompt, 0
}

func (rep gmReply) finishReason() string {
	if rep.stop == "max_tokens" {
		return "MAX_TOKENS"
	}
	return "STOP" // stop sequences and function calls included
}

// parts are the answer's parts: thoughts (when asked for), text, the
// function call.
func (rep gmReply) parts() []map[string]any {
	var out []map[string]any
	if rep.thinking != nil && rep.includeThoughts {
		out = append(out, map[string]any{"text": strings.Join(rep.thinking, " "), "thought": true})
	}
	if len(rep.text) > 0 || rep.tool == nil {
		out = append(out, map[string]any{"text": strings.Join(rep.text, " ")})
	}
	if rep.tool != nil {
		out = append(out, map[string]any{"functionCall": map[string]any{"name": rep.tool.Name, "args": rep.tool.Input}})
	}
	return out
}

// response is a GenerateContentResponse with these parts; usage only on
// the last of a stream.
func (rep gmReply) response(parts []map[string]any, finish string, usage bool) map[string]any {
	out := map[string]any{"modelVersion": rep.model, "responseId": rep.id}
	if rep.blocked {
		out["promptFeedback"] = map[string]any{"blockReason": "SAFETY"}
	} else {
		cand := map[string]any{"content": map[string]any{"role": "model", "parts": parts}, "index": 0}
		if finish != "" {
			cand["finishReason"] = finish
		}
		out["candidates"] = []any{cand}
	}
	if usage {
		thoughts := len(rep.thinking)
		candidates := rep.outputTokens() - thoughts
		u := map[string]int{"promptTokenCount": rep.prompt, "candidatesTokenCount": candidates,
			"totalTokenCount": rep.prompt + candidates + thoughts}
		if thoughts > 0 {
			u["thoughtsTokenCount"] = thoughts
		}
		if rep.cached > 0 {
			u["cachedContentTokenCount"] = rep.cached
		}
		out["usageMetadata"] = u
	}
	return out
}

// stream sends the answer as Gemini does: one response per piece (a
// thought, each word, the function call), the last with the finish reason
// and usage metadata; no end marker.
func (s *geminiServer) stream(w http.ResponseWriter, r *http.Request, rep gmReply, p plan) {
	if !sleep(r, p.latency+p.ttft) {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	interval := pace(p.tokensPerSecond)
	var pieces [][]map[string]any
	if rep.thinking != nil && rep.includeThoughts {
		pieces = append(pieces, []map[string]any{{"text": strings.Join(rep.thinking, " "), "thought": true}})
	}
	for j, word := range rep.text {
		pieces = append(pieces, []map[string]any{{"text": spaced(j, word)}})
	}
	if rep.tool != nil {
		pieces = append(pieces, []map[string]any{{"functionCall": map[string]any{"name": rep.tool.Name, "args": rep.tool.Input}}})
	}
	if rep.blocked || len(pieces) == 0 {
		pieces = append(pieces, []map[string]any{{"text": ""}})
	}
	emit := func(v any) bool {
		b, err := json.Marshal(v)
		return err == nil && sse.WriteData(w, b) == nil && flush(rc) == nil
	}
	for i, parts := range pieces {
		if i > 0 && !sleep(r, interval) {
			return
		}
		last := i == len(pieces)-1
		finish := ""
		if last {
			finish = rep.finishReason()
		}
		if !emit(rep.response(parts, finish, last)) {
			return
		}
		if p.midStreamFailAfter > 0 && i+1 == p.midStreamFailAfter {
			panic(http.ErrAbortHandler)
		}
		if p.midStreamError && i+1 == midstreamFailChunks {
			emit(map[string]any{"error": map[string]any{"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}})
			return
		}
	}
}
