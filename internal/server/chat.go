package server

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/shopspring/decimal"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/attribution"
	"github.com/perpetuo/perpetuo/internal/gateway"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/sse"
)

// CreateChatCompletion implements api.StrictServerInterface.
func (s *Server) CreateChatCompletion(ctx context.Context, req api.CreateChatCompletionRequestObject) (api.CreateChatCompletionResponseObject, error) {
	b := req.Body
	models := chatModels(b)
	if len(models) == 0 {
		return nil, apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
			"Set 'model' (e.g. \"mock/echo\") or 'models'; GET /v1/models lists what you can use.").With("field", "/model")
	}
	k := callerKey(ctx)
	pol, err := s.policies.For(ctx, k)
	if err != nil {
		return nil, err
	}
	caller := gateway.Caller{KeyID: k.ID, WorkspaceID: k.WorkspaceID, MemberID: k.MemberID, Policy: pol}
	prefs, err := prefsOf(b.Provider)
	if err != nil {
		return nil, err
	}
	body := rawBody(ctx)
	greq := gateway.Request{
		Body: body, Models: models, Stream: b.Stream != nil && *b.Stream, MaxTokens: maxTokens(b), NonText: nonText(body),
		Prefs: prefs, Strategy: string(deref(b.Strategy)), User: deref(b.User), SessionID: deref(b.SessionId),
		App: attribution.FromHeaders(stateOf(ctx).headers), Metadata: deref(b.Metadata),
	}
	if !greq.Stream {
		resp, err := s.gateway.Complete(ctx, caller, greq)
		if err != nil {
			return nil, err
		}
		return jsonCompletion{resp}, nil
	}
	return streamCompletion{ctx: ctx, s: s, caller: caller, req: greq}, nil
}

// maxTokens is the request's output cap: the smaller of
// max_completion_tokens and max_tokens where both are set (the gateway
// writes it into both before calling upstream, so no provider reads the
// larger one).
func maxTokens(b *api.ChatCompletionRequest) int {
	switch {
	case b.MaxCompletionTokens != nil && b.MaxTokens != nil:
		return min(*b.MaxCompletionTokens, *b.MaxTokens)
	case b.MaxCompletionTokens != nil:
		return *b.MaxCompletionTokens
	}
	return deref(b.MaxTokens)
}

// nonText reports whether a message has a content part other than text
// (image_url, input_audio, file, ...).
func nonText(body []byte) bool {
	// A part's type is spelled "type" in the body, or with a \u escape:
	// without either there is none, and most bodies (string contents, no
	// tools) are then not walked at all.
	if !bytes.Contains(body, quotedType) && !bytes.Contains(body, unicodeEscape) {
		return false
	}
	for _, types := range gjson.GetBytes(body, "messages.#.content.#.type").Array() {
		for _, t := range types.Array() {
			if t.String() != "text" {
				return true
			}
		}
	}
	return false
}

var quotedType, unicodeEscape = []byte(`"type"`), []byte(`\u`)

// chatModels is the fallback chain: model first, then models[] without repeats.
func chatModels(b *api.ChatCompletionRequest) []string {
	var out []string
	seen := map[string]bool{}
	add := func(m string) {
		if m != "" && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	add(deref(b.Model))
	if b.Models != nil {
		for _, m := range *b.Models {
			add(m)
		}
	}
	return out
}

func prefsOf(p *api.ProviderPreferences) (routing.Prefs, error) {
	if p == nil {
		return routing.Prefs{}, nil
	}
	out := routing.Prefs{
		Order: deref(p.Order), Only: deref(p.Only), Ignore: deref(p.Ignore),
		AllowFallbacks: p.AllowFallbacks, ZDR: deref(p.Zdr), DataCollection: string(deref(p.DataCollection)),
		Quantizations: deref(p.Quantizations), RequireParameters: deref(p.RequireParameters),
	}
	if mp := p.MaxPrice; mp != nil {
		var m routing.MaxPrice
		for _, f := range []struct {
			name string
			in   *api.PriceLimit
			out  **decimal.Decimal
		}{{"prompt", mp.Prompt, &m.Prompt}, {"completion", mp.Completion, &m.Completion}, {"request", mp.Request, &m.Request}} {
			if f.in == nil {
				continue
			}
			d, err := decimal.NewFromString(string(*f.in))
			if err != nil || d.IsNegative() {
				return routing.Prefs{}, apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
					"Invalid request: value must be a non-negative decimal at /provider/max_price/%s.", f.name).
					With("field", "/provider/max_price/"+f.name)
			}
			*f.out = &d
		}
		out.MaxPrice = &m
	}
	if p.Sort != nil {
		if by, err := p.Sort.AsProviderPreferencesSort0(); err == nil {
			out.Sort = &routing.Sort{By: string(by)}
		} else if obj, err := p.Sort.AsProviderPreferencesSort1(); err == nil && obj.By != nil {
			out.Sort = &routing.Sort{By: string(*obj.By), Partition: string(deref(obj.Partition))}
		}
	}
	if t := p.PreferredMinThroughput; t != nil {
		if v, err := t.AsProviderPreferencesPreferredMinThroughput0(); err == nil {
			out.PreferredMinThroughput = float64(v)
		} else if m, err := t.AsProviderPreferencesPreferredMinThroughput1(); err == nil {
			out.PreferredMinThroughput = percentile(m)
		}
	}
	if l := p.PreferredMaxLatency; l != nil {
		if v, err := l.AsProviderPreferencesPreferredMaxLatency0(); err == nil {
			out.PreferredMaxLatency = float64(v)
		} else if m, err := l.AsProviderPreferencesPreferredMaxLatency1(); err == nil {
			out.PreferredMaxLatency = percentile(m)
		}
	}
	return out, nil
}

// percentile reads OpenRouter's per-percentile preference object
// ({"p50": ..., "p90": ...}): health keeps moving averages, closest to the
// median, so p50 is used, else the first of p75, p90, p99 given.
func percentile[T ~map[string]float32](m T) float64 {
	for _, k := range []string{"p50", "p75", "p90", "p99"} {
		if v, ok := m[k]; ok {
			return float64(v)
		}
	}
	return 0
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// jsonCompletion writes a finished completion.
type jsonCompletion struct{ resp *gateway.Response }

func (c jsonCompletion) VisitCreateChatCompletionResponse(w http.ResponseWriter) error {
	// Record and settle (in the background) before the body goes out, so a
	// client that has its whole answer finds its record and usage at once.
	c.resp.Finish()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(c.resp.Body))) // complete once the body is out, not at handler return
	h.Set("X-Generation-Id", c.resp.GenerationID)
	if c.resp.ZDR {
		h.Set(headerZDR, "true")
	}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(c.resp.Body); err != nil {
		return nil // the client is gone; nothing more to tell it
	}
	_ = http.NewResponseController(w).Flush()
	return nil
}

// streamCompletion serves a stream as Server-Sent Events. The gateway
// decides when the headers go out (with the first keep-alive comment or
// chunk); an error returned before that is a plain HTTP error.
type streamCompletion struct {
	ctx    context.Context
	s      *Server
	caller gateway.Caller
	req    gateway.Request
}

func (c streamCompletion) VisitCreateChatCompletionResponse(w http.ResponseWriter) error {
	return c.s.stream(c.ctx, w, c.caller, c.req, func(out *sseWriter) gateway.ChunkWriter { return out })
}

// sseWriter writes SSE events, flushed after each burst, with an idle write deadline so
// a client that stops reading cannot hold the stream forever. Once detached
// (see detach.go) it frames the chunked body itself on the hijacked
// connection.
type sseWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
	buf  []byte // the event being written, reused

	deadline time.Time // the write deadline set last

	conn net.Conn // set once detached
	out  []byte   // detached: the chunks not yet written
	sent int64    // detached: event bytes written
}

// arm moves the write deadline to idle from now, unless the one set is
// still more than 7/8 of idle away. Setting it is a timer update, which
// per chunk was a measurable share of a stream's CPU; once per idle/8 of
// writing still cuts a client that stopped reading between 7/8 of idle and
// idle after its last progress.
func (s *sseWriter) arm() {
	now := time.Now()
	if s.deadline.Sub(now) > s.idle-s.idle/8 {
		return
	}
	s.deadline = now.Add(s.idle)
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(s.deadline)
		return
	}
	_ = s.rc.SetWriteDeadline(s.deadline) // unsupported writers (tests) just skip it
}

// Open sends the status and the stream's headers.
func (s *sseWriter) Open(generationID string, zdr bool) {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Generation-Id", generationID)
	if zdr {
		h.Set(headerZDR, "true")
	}
	s.w.WriteHeader(http.StatusOK)
}

// headerZDR marks an answer only zero-data-retention endpoints could serve.
const headerZDR = "X-Perpetuo-Zdr"

// WriteChunk buffers one data event (net/http's response buffer, 4 KiB,
// sends it on its own when full).
func (s *sseWriter) WriteChunk(data []byte) error {
	s.buf = sse.AppendData(s.buf[:0], data)
	return s.write()
}

// WriteComment writes a comment line and flushes it.
func (s *sseWriter) WriteComment(text string) error {
	s.buf = sse.AppendComment(s.buf[:0], text)
	if err := s.write(); err != nil {
		return err
	}
	return s.Flush()
}

func (s *sseWriter) WriteDone() error {
	s.buf = sse.AppendDone(s.buf[:0])
	if err := s.write(); err != nil {
		return err
	}
	return s.Flush()
}

func (s *sseWriter) write() error {
	if s.conn != nil {
		s.out = appendChunk(s.out, s.buf)
		s.sent += int64(len(s.buf))
		if len(s.out) >= detachedBuffer {
			return s.Flush()
		}
		return nil
	}
	s.arm()
	_, err := s.w.Write(s.buf)
	return err
}

// detachedBuffer is what a detached stream buffers before it writes
// without waiting for the burst's end, as net/http's response buffer does.
const detachedBuffer = 4 << 10

func (s *sseWriter) Flush() error {
	if s.conn == nil {
		return s.rc.Flush()
	}
	if len(s.out) == 0 {
		return nil
	}
	s.arm()
	_, err := s.conn.Write(s.out)
	s.out = s.out[:0]
	return err
}
