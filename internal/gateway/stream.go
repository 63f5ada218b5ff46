package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/providers"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/routing"
)

// ChunkWriter sends SSE data events to the client: WriteChunk buffers one,
// Flush sends what is buffered, WriteDone sends [DONE] and flushes.
type ChunkWriter interface {
	WriteChunk(data []byte) error
	Flush() error
	WriteDone() error
}

// Stream is an upstream stream that has produced its first chunk and not yet
// sent anything to the client. Relay must be called exactly once.
type Stream struct {
	GenerationID string
	r            *run
	cand         routing.Candidate
	up           providers.Stream
	first        []byte
	ident        identity
	wd           *watchdog
	ttft         time.Duration // the serving attempt's time to its first chunk

	created       int64
	content       int // bytes of content relayed, for usage estimates
	usage         providers.Usage
	hasUsage      bool
	firstTokenSet bool
}

// OpenStream plans a streaming request and opens the first endpoint that
// answers with a chunk. Every failure here is still a plain HTTP error.
func (g *Gateway) OpenStream(ctx context.Context, c Caller, req Request) (*Stream, error) {
	r := g.newRun(c, req)
	plan, err := r.plan(ctx)
	if err != nil {
		return nil, r.fail(ctx, err)
	}
	var st *Stream
	if _, err := r.try(ctx, plan, func(cand routing.Candidate) (err error) {
		st, err = r.open(ctx, cand)
		return err
	}); err != nil {
		return nil, err
	}
	// The id goes out with the headers, long before the record: mark it, so
	// it resolves even if this replica dies mid-stream.
	g.recorder.Started(records.Start{ID: r.rec.ID, WorkspaceID: c.WorkspaceID, KeyID: c.KeyID,
		MemberID: c.MemberID, RequestedModel: r.rec.RequestedModel, CreatedAt: r.rec.CreatedAt})
	return st, nil
}

// open starts the upstream stream and waits for its first chunk, so a stream
// that dies before producing anything can still fall back.
func (r *run) open(ctx context.Context, c routing.Candidate) (*Stream, error) {
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
	wd.kick()
	ttft := r.g.now().Sub(r.began)
	r.served(c)
	r.rec.Status = 200
	r.rec.UpstreamID = gjson.GetBytes(first, "id").String()
	return &Stream{GenerationID: r.rec.ID, r: r, cand: c, up: up, first: first, wd: wd, ttft: ttft,
		ident:   newIdentity(r.rec.ID, r.rec.Model, r.rec.Provider),
		created: gjson.GetBytes(first, "created").Int()}, nil
}

// Relay copies the stream to w chunk by chunk, ends it with a usage chunk and
// [DONE], and records the generation. An upstream failure mid-stream becomes
// an in-band error chunk; a client that hangs up (ctx cancelled or a failed
// write) cancels the upstream call and is billed for what was produced.
func (s *Stream) Relay(ctx context.Context, w ChunkWriter) {
	defer s.wd.stop()
	defer s.up.Close()
	chunk, err := s.first, error(nil)
	for err == nil {
		werr := s.forward(w, chunk)
		if werr == nil && !s.up.Ready() { // a burst goes out in one write
			werr = w.Flush()
		}
		if werr != nil {
			s.cancelled()
			return
		}
		if chunk, err = s.up.Next(); err == nil {
			s.wd.kick()
		}
	}
	err = s.wd.explain(s.cand.Provider.Slug, err)
	if ctx.Err() != nil {
		s.cancelled()
		return
	}
	if err != io.EOF {
		s.failed(w, err)
		return
	}
	s.end(w)
}

// forward relays one upstream chunk, keeping usage for the final chunk.
func (s *Stream) forward(w ChunkWriter, chunk []byte) error {
	f := parseChunk(chunk)
	if f.usage.IsObject() {
		s.usage, s.hasUsage = providers.ParseUsage(f.usage)
	}
	choices := f.choices.Array()
	if f.choices.IsArray() && len(choices) == 0 {
		return nil // the upstream's usage-only chunk: ours replaces it
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
	out, ok := s.ident.splice(chunk, f)
	if !ok {
		var err error
		if out, err = s.r.decorate(chunk); err != nil {
			return fmt.Errorf("decorate chunk: %w", err)
		}
	}
	if err := w.WriteChunk(out); err != nil {
		return fmt.Errorf("write chunk: %w", err)
	}
	return nil
}

// settle computes usage and cost from what the upstream reported, or from
// what was relayed when it reported nothing (a cut or cancelled stream).
func (s *Stream) settle() {
	u := s.usage
	if !s.hasUsage {
		s.r.rec.UsageEstimated = true
		u = providers.Usage{PromptTokens: estimateTokens(len(s.r.req.Body)), CompletionTokens: estimateTokens(s.content)}
	}
	s.r.usage(s.cand, s.r.clamp(s.cand, u))
}

// end sends the usage chunk and [DONE]. The record is handed over first,
// so a client that has its whole answer finds it (and the usage) at once.
func (s *Stream) end(w ChunkWriter) {
	s.settle()
	s.r.healthy(s.cand, s.ttft, s.r.g.now().Sub(s.r.began), s.r.rec.CompletionTokens)
	s.r.finish()
	_ = s.writeUsage(w)
	_ = w.WriteDone()
}

func (s *Stream) cancelled() {
	s.settle()
	s.r.rec.Cancelled = true
	s.r.finish()
}

// failed reports a mid-stream upstream failure in-band: an error chunk whose
// choice finishes with "error", the usage so far, then [DONE].
func (s *Stream) failed(w ChunkWriter, err error) {
	e := apierr.From(err)
	s.r.g.log.Warn("upstream stream failed mid-way", "generation", s.GenerationID, "provider", s.cand.Provider.Slug, "err", err)
	var pe *providers.Error
	if errors.As(err, &pe) {
		last := &s.r.rec.Attempts[len(s.r.rec.Attempts)-1]
		last.Status, last.ErrorType = pe.Status, string(e.Type)
	}
	s.r.rec.ErrorType, s.r.rec.FinishReason = string(e.Type), "error"
	if endpointFault(err) {
		s.r.g.planner.Observe(s.cand.Provider.Slug, s.cand.Model.ID, routing.Outcome{Total: s.r.g.now().Sub(s.r.began)})
	}
	s.settle()
	s.r.finish() // before the last bytes, as in end
	chunk, _ := sjson.SetBytes(s.skeleton(), "error", e.Body())
	chunk, _ = sjson.SetRawBytes(chunk, "choices", []byte(`[{"index":0,"delta":{},"finish_reason":"error"}]`))
	if w.WriteChunk(chunk) == nil && s.writeUsage(w) == nil {
		_ = w.WriteDone()
	}
}

func (s *Stream) writeUsage(w ChunkWriter) error {
	chunk, err := sjson.SetRawBytes(s.skeleton(), "usage", s.r.usageJSON())
	if err != nil {
		return fmt.Errorf("usage chunk: %w", err)
	}
	return w.WriteChunk(chunk)
}

// skeleton is a chunk with Perpetuo's identity fields and no choices.
func (s *Stream) skeleton() []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"chat.completion.chunk","created":%d,"model":%q,"provider":%q,"choices":[]}`,
		s.r.rec.ID, s.created, s.r.rec.Model, s.r.rec.Provider)
}
