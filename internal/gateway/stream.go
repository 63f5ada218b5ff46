package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/jsonedit"
	"github.com/perpetuo/perpetuo/internal/providers"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// stream is an upstream stream that produced its first chunk, being relayed
// to the client.
type stream struct {
	r     *run
	cand  routing.Candidate
	up    providers.Stream
	first []byte
	// firstFields is the first chunk's, parsed (and validated) while the
	// endpoint could still be fallen back from.
	firstFields chunkFields
	ident       identity
	wd          *watchdog
	ttft        time.Duration // the serving attempt's time to its first chunk

	created       int64
	content       int // bytes generated and relayed, for usage estimates
	usage         providers.Usage
	hasUsage      bool
	firstTokenSet bool
}

// Stream serves a streaming request to w: it plans the request, opens the
// first endpoint that answers with a chunk (falling back until then), and
// relays the stream, ending it with a usage chunk and [DONE].
//
// It returns an error only when nothing reached the client, which the
// caller then sends as a plain HTTP error. Once anything went out (a
// keep-alive comment while the upstream was silent, or a chunk), failures
// are reported in-band: an error chunk whose choice finishes with "error",
// the usage chunk, then [DONE].
func (g *Gateway) Stream(ctx context.Context, c Caller, req Request, w ChunkWriter) error {
	rl, err := g.OpenStream(ctx, c, req, w)
	if rl != nil {
		rl.Run(ctx)
	}
	return err
}

// Relay is a stream whose first chunk has arrived, waiting to be relayed.
// Its upstream call lives on the context OpenStream was given, so a caller
// that runs it on another goroutine gives OpenStream a context that outlives
// its own.
type Relay struct {
	st *stream
	cl *client
}

// OpenStream is Stream up to the upstream's first chunk: it plans, falls
// back until an endpoint answers, and returns the stream to relay. A nil
// Relay means the stream is over: with an error when nothing reached the
// client, without one when the failure went out in-band.
func (g *Gateway) OpenStream(ctx context.Context, c Caller, req Request, w ChunkWriter) (*Relay, error) {
	r := g.newRun(c, req)
	// The id goes out with the headers, long before the record: mark it
	// then, so it resolves even if this replica dies mid-stream.
	cl := newClient(w, r.rec.ID, r.rec.ZDR, g.keepAlive, func() {
		g.recorder.Started(records.Start{ID: r.rec.ID, WorkspaceID: c.WorkspaceID, KeyID: c.KeyID,
			MemberID: c.MemberID, RequestedModel: r.rec.RequestedModel, CreatedAt: r.rec.CreatedAt})
	})
	plan, err := r.plan(ctx)
	if err != nil {
		return nil, r.refuse(ctx, cl, err)
	}
	var st *stream
	if _, err := r.try(ctx, plan, func(cand routing.Candidate) (err error) {
		st, err = r.open(ctx, cand)
		return err
	}); err != nil {
		return nil, r.refuse(ctx, cl, err)
	}
	return &Relay{st: st, cl: cl}, nil
}

// Run relays the stream to its end; cancelling ctx cuts it (the client is
// billed for what was produced).
func (rl *Relay) Run(ctx context.Context) { rl.st.relay(ctx, rl.cl) }

// Opened sends the headers if they have not gone out, then runs f while
// nothing else writes to the client (the keep-alive timer waits), so f may
// change how the writer reaches the client.
func (rl *Relay) Opened(f func()) {
	rl.cl.mu.Lock()
	defer rl.cl.mu.Unlock()
	rl.cl.open()
	f()
}

// refuse ends a stream that failed before its first chunk: a plain HTTP
// error when nothing went out yet, else (keep-alives were sent) the error
// in-band.
func (r *run) refuse(ctx context.Context, cl *client, err error) error {
	if !cl.stop() {
		return r.fail(ctx, err)
	}
	r.inBand = true
	e := apierr.From(r.fail(ctx, err))
	if ctx.Err() == nil {
		r.writeError(cl, e, r.start.Unix())
	}
	return nil
}

// open starts the upstream stream and waits for its first chunk, so a stream
// that dies before producing anything can still fall back.
func (r *run) open(ctx context.Context, c routing.Candidate) (*stream, error) {
	sctx, wd := watchFirst(ctx, r.g.firstByte, r.g.streamIdle)
	up, err := r.g.adapters[c.Provider.API].Stream(sctx, r.call(c))
	if err != nil {
		wd.stop()
		return nil, wd.explain(c.Provider.Slug, err)
	}
	first, err := up.Next()
	err = wd.explain(c.Provider.Slug, err)
	if err == io.EOF {
		err = &providers.Error{Status: 200, Retryable: true, Class: providers.Uncertain, Client: apierr.New(502, apierr.ProviderError,
			"Provider %s ended the stream without output; retry, or allow fallbacks.", c.Provider.Slug)}
	}
	if err != nil {
		up.Close()
		wd.stop()
		return nil, err
	}
	f, err := parseChunk(first)
	if err != nil {
		up.Close()
		wd.stop()
		return nil, providers.Malformed(c.Provider.Slug, http.StatusOK)
	}
	wd.kick()
	ttft := r.g.now().Sub(r.began)
	r.served(c)
	r.rec.Status = 200
	r.rec.UpstreamID = gjson.GetBytes(first, "id").String()
	created := gjson.GetBytes(first, "created").Int()
	if created == 0 {
		created = r.start.Unix()
	}
	return &stream{r: r, cand: c, up: up, first: first, firstFields: f, wd: wd, ttft: ttft,
		ident: newIdentity(r.rec.ID, r.rec.Model, r.rec.Provider), created: created}, nil
}

// relay copies the stream to the client chunk by chunk, ends it with a usage
// chunk and [DONE], and records the generation. An upstream failure becomes
// an in-band error chunk; a client that hangs up (ctx cancelled or a failed
// write) cancels the upstream call, which closes its connection, and is
// billed for what was produced.
func (s *stream) relay(ctx context.Context, cl *client) {
	defer cl.stop()
	defer s.wd.stop()
	defer s.up.Close()
	chunk, f, err := s.first, s.firstFields, error(nil)
	for err == nil {
		var out []byte
		if out, err = s.forward(chunk, f); err != nil {
			break
		}
		// A burst goes out in one write: flush only when the upstream has
		// nothing more buffered.
		flush := !s.up.Ready()
		var werr error
		switch {
		case out != nil:
			werr = cl.chunk(out, flush)
		case flush:
			werr = cl.flush()
		}
		if werr != nil {
			s.cancelled()
			return
		}
		if chunk, err = s.up.Next(); err == nil {
			s.wd.kick()
			if f, err = parseChunk(chunk); err != nil {
				err = providers.Malformed(s.cand.Provider.Slug, http.StatusOK)
			}
		}
	}
	err = s.wd.explain(s.cand.Provider.Slug, err)
	if ctx.Err() != nil {
		s.cancelled()
		return
	}
	if err != io.EOF {
		s.failed(cl, err)
		return
	}
	s.end(cl)
}

// forward turns one upstream chunk, with its fields, into the client's
// (nil: nothing to send), keeping usage and finish reasons for the record.
func (s *stream) forward(chunk []byte, f chunkFields) ([]byte, error) {
	if f.usageValue.IsObject() {
		s.usage, s.hasUsage = providers.ParseUsage(f.usageValue)
	}
	choices := f.choices.Array()
	if f.choices.IsArray() && len(choices) == 0 {
		return nil, nil // the upstream's usage-only chunk: ours replaces it
	}
	for _, ch := range choices {
		if fr := ch.Get("finish_reason").String(); fr != "" {
			s.r.rec.FinishReason, s.r.rec.NativeFinishReason = fr, fr
		}
		if n := generatedBytes(ch.Get("delta")); n > 0 {
			s.content += n
			if !s.firstTokenSet {
				s.firstTokenSet = true
				s.r.rec.TTFT = s.r.since()
			}
		}
	}
	// Usage rides only the last chunk, Perpetuo's own (OpenAI sends
	// "usage": null on every chunk, which OpenRouter's SDK refuses).
	if out, ok := s.ident.splice(chunk, f); ok {
		return out, nil
	}
	out, err := s.r.decorate(chunk, jsonedit.Delete("usage"))
	return out, s.malformed(err)
}

// malformed is the error for a chunk that could not be rewritten, or nil.
func (s *stream) malformed(err error) error {
	if err == nil {
		return nil
	}
	e := providers.Malformed(s.cand.Provider.Slug, http.StatusOK)
	e.Client = e.Client.WithCause(err)
	return e
}

// settle computes usage and cost from what the upstream reported, or from
// what was relayed when it reported nothing (a cut or cancelled stream).
func (s *stream) settle() {
	u := s.usage
	if !s.hasUsage {
		s.r.rec.UsageEstimated = true
		u = providers.Usage{PromptTokens: estimateTokens(len(s.r.req.Body)), CompletionTokens: estimateTokens(s.content)}
	}
	s.r.usage(s.cand, s.r.clamp(s.cand, u))
}

// end sends the usage chunk and [DONE]. The record is handed over first,
// so a client that has its whole answer finds it (and the usage) at once.
func (s *stream) end(cl *client) {
	s.settle()
	s.r.healthy(s.cand, s.ttft, s.r.g.now().Sub(s.r.began), s.r.rec.CompletionTokens)
	s.r.finish()
	if s.r.writeUsage(cl, s.created) == nil {
		_ = cl.finish()
	}
}

func (s *stream) cancelled() {
	s.settle()
	s.r.rec.Cancelled = true
	s.r.finish()
}

// failed reports a mid-stream upstream failure in-band: an error chunk whose
// choice finishes with "error", the usage so far, then [DONE].
func (s *stream) failed(cl *client, err error) {
	e := apierr.From(err)
	s.r.g.log.Warn("upstream stream failed mid-way", "generation", s.r.rec.ID, "provider", s.cand.Provider.Slug, "err", err)
	var pe *providers.Error
	if errors.As(err, &pe) {
		last := &s.r.rec.Attempts[len(s.r.rec.Attempts)-1]
		last.Status, last.ErrorType = pe.Status, string(e.Type)
	}
	s.r.failedInBand(e)
	if endpointFault(err) {
		s.r.g.planner.Observe(s.cand.Provider.Slug, s.cand.Model.ID, routing.Outcome{Total: s.r.g.now().Sub(s.r.began)})
	}
	s.settle()
	s.r.finish() // before the last bytes, as in end
	s.r.writeError(cl, e, s.created)
}

// failedInBand marks the record of a stream that ends with an in-band
// error: it finishes with "error", and the native finish reason is the
// upstream's when it sent one.
func (r *run) failedInBand(e *apierr.Error) {
	r.rec.ErrorType, r.rec.FinishReason = string(e.Type), "error"
	if r.rec.NativeFinishReason == "" {
		r.rec.NativeFinishReason = "error"
	}
}

// writeError sends the in-band error: the error chunk, the usage chunk and
// [DONE]. The record must be handed over already.
func (r *run) writeError(cl *client, e *apierr.Error, created int64) {
	native := r.rec.NativeFinishReason
	if native == "" {
		native = "error"
	}
	chunk, err := json.Marshal(errorChunk{chunkHead: r.head(created), Error: e.Body(),
		Choices: [1]errorChoice{{Delta: struct{}{}, FinishReason: "error", NativeFinishReason: native}}})
	if err != nil { // only unmarshalable error metadata can get here
		chunk, _ = json.Marshal(errorChunk{chunkHead: r.head(created), Error: apierr.New(e.Status, e.Type, "%s", e.Message).Body(),
			Choices: [1]errorChoice{{Delta: struct{}{}, FinishReason: "error", NativeFinishReason: native}}})
	}
	if cl.chunk(chunk, false) == nil && r.writeUsage(cl, created) == nil {
		_ = cl.finish()
	}
}

// writeUsage sends the usage chunk, with choices empty.
func (r *run) writeUsage(cl *client, created int64) error {
	return cl.chunk(appendUsageChunk(make([]byte, 0, 768), r.head(created), r.usageJSON()), false)
}

// appendUsageChunk appends the usage chunk as json.Marshal would write it,
// without its reflection and its second pass over usage (every stream
// ends with one).
func appendUsageChunk(dst []byte, h chunkHead, usage []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = jsonedit.AppendQuoted(dst, h.ID)
	dst = append(dst, `,"object":`...)
	dst = jsonedit.AppendQuoted(dst, h.Object)
	dst = append(dst, `,"created":`...)
	dst = strconv.AppendInt(dst, h.Created, 10)
	dst = append(dst, `,"model":`...)
	dst = jsonedit.AppendQuoted(dst, h.Model)
	if h.Provider != "" {
		dst = append(dst, `,"provider":`...)
		dst = jsonedit.AppendQuoted(dst, h.Provider)
	}
	dst = append(dst, `,"choices":[],"usage":`...)
	dst = append(dst, usage...)
	return append(dst, '}')
}

// chunkHead is the identity of a chunk Perpetuo writes itself.
type chunkHead struct {
	ID       string `json:"id"`
	Object   string `json:"object"`
	Created  int64  `json:"created"`
	Model    string `json:"model"`
	Provider string `json:"provider,omitempty"`
}

type errorChunk struct {
	chunkHead
	Error   any            `json:"error"`
	Choices [1]errorChoice `json:"choices"`
}

type errorChoice struct {
	Index              int      `json:"index"`
	Delta              struct{} `json:"delta"`
	FinishReason       string   `json:"finish_reason"`
	NativeFinishReason string   `json:"native_finish_reason"`
}

// head is the chunk identity: the served model, or the requested one when
// nothing was served.
func (r *run) head(created int64) chunkHead {
	model := r.rec.Model
	if model == "" {
		model = r.rec.RequestedModel
	}
	return chunkHead{ID: r.rec.ID, Object: "chat.completion.chunk", Created: created, Model: model, Provider: r.rec.Provider}
}
