package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/sse"
)

// target is an endpoint the load goes to.
type target struct {
	name    string // as the report shows it
	url     string // the chat completions URL
	model   string
	token   string // bearer token; "" sends none
	serving *child // the process serving it, whose CPU is measured (nil: the mock itself)
	gateway bool   // every request leaves a generation record
}

// sample is one successful request.
type sample struct {
	latency time.Duration // until the whole body was read
	ttft    time.Duration // streams: until the first "data:" line
	chunks  int           // streams: data lines relayed
}

// batch is what a run of requests against one target produced.
type batch struct {
	sent    int
	samples []sample
	wall    time.Duration
	cpu     time.Duration // user + system CPU time of the serving process
	pgCPU   time.Duration // PostgreSQL's, over the same wall time
	errs    tally
}

// add merges o into b.
func (b *batch) add(o batch) {
	b.sent += o.sent
	b.samples = append(b.samples, o.samples...)
	b.wall += o.wall
	b.cpu += o.cpu
	b.pgCPU += o.pgCPU
	b.errs.merge(o.errs)
}

// loader sends requests at a fixed concurrency through one shared client.
type loader struct {
	client      *http.Client
	concurrency int
	timeout     time.Duration
}

// newLoader returns a loader whose transport keeps a connection per worker
// alive for every target.
func newLoader(concurrency int, timeout time.Duration) *loader {
	t := &http.Transport{
		Proxy:               nil, // 127.0.0.1 only; never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * concurrency,
		MaxIdleConnsPerHost: 2 * concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &loader{client: &http.Client{Transport: t}, concurrency: concurrency, timeout: timeout}
}

// close drops the client's idle connections.
func (l *loader) close() { l.client.CloseIdleConnections() }

// run sends n requests to t, l.concurrency at a time, and stops early when
// ctx ends; pad adds that many bytes to the system message.
func (l *loader) run(ctx context.Context, t target, stream bool, n, pad int) batch {
	body := chatBody(t.model, stream, pad)
	var next atomic.Int64
	parts := make([]batch, min(l.concurrency, n))
	var wg sync.WaitGroup
	cpu0, pg0 := t.serving.cpu(), postgresCPU()
	start := time.Now()
	for w := range parts {
		wg.Go(func() {
			p := &parts[w]
			for ctx.Err() == nil && next.Add(1) <= int64(n) {
				p.sent++
				s, err := l.one(ctx, t, body, stream)
				if err != nil {
					p.errs.add(err)
					continue
				}
				p.samples = append(p.samples, s)
			}
		})
	}
	wg.Wait()
	out := batch{samples: make([]sample, 0, n)}
	for _, p := range parts {
		out.add(p)
	}
	out.wall = time.Since(start)
	if t.gateway {
		// What the round caused but the gateway does after answering (the
		// records' flush, every 100 ms; the budgets', every 200 ms) counts
		// toward the round, and not toward whichever round comes next.
		time.Sleep(settle)
	}
	out.cpu, out.pgCPU = t.serving.cpu()-cpu0, postgresCPU()-pg0
	return out
}

// settle is how long a gateway round's CPU is still counted after its last
// answer: longer than the gateway's record and budget flush intervals.
const settle = 350 * time.Millisecond

// one sends one request and reads and checks the whole response.
func (l *loader) one(ctx context.Context, t target, body []byte, stream bool) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return sample{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	start := time.Now()
	resp, err := l.client.Do(req)
	if err != nil {
		return sample{}, failure{kind: "transport error", detail: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return sample{}, failure{kind: fmt.Sprintf("HTTP %d", resp.StatusCode), detail: string(snippet)}
	}
	if stream {
		return readStream(resp, start)
	}
	return readJSON(resp, start)
}

// readJSON reads a chat.completion and checks its reply.
func readJSON(resp *http.Response, start time.Time) (sample, error) {
	raw, err := io.ReadAll(resp.Body)
	s := sample{latency: time.Since(start)}
	if err != nil {
		return sample{}, failure{kind: "body cut short", detail: err.Error()}
	}
	content := gjson.GetBytes(raw, "choices.0.message.content")
	if !content.Exists() {
		return sample{}, failure{kind: "malformed: no choices[0].message.content", detail: clip(raw)}
	}
	if content.String() != expectedReply {
		return sample{}, failure{kind: "malformed: reply is not the echo", detail: content.String()}
	}
	return s, nil
}

// readStream reads an SSE stream to its end, which must be "data: [DONE]",
// and checks the streamed reply.
func readStream(resp *http.Response, start time.Time) (sample, error) {
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return sample{}, failure{kind: "malformed: not an event stream", detail: ct}
	}
	var (
		s     sample
		reply strings.Builder
		done  bool
	)
	r := sse.NewReader(resp.Body) // the gateway's own framer: comments are skipped
	var err error
	for {
		var ev sse.Event
		if ev, err = r.Next(); err != nil {
			break
		}
		if s.ttft == 0 {
			s.ttft = time.Since(start)
		}
		s.chunks++
		data := ev.Data
		switch {
		case done:
			return sample{}, failure{kind: "malformed: data after [DONE]", detail: clip(data)}
		case ev.IsDone():
			done = true
			continue
		}
		if e := gjson.GetBytes(data, "error"); e.Exists() {
			return sample{}, failure{kind: "in-band stream error", detail: clip([]byte(e.Raw))}
		}
		reply.WriteString(gjson.GetBytes(data, "choices.0.delta.content").String())
	}
	s.latency = time.Since(start)
	switch {
	case err != io.EOF:
		return sample{}, failure{kind: "stream cut short", detail: err.Error()}
	case !done:
		return sample{}, failure{kind: "malformed: stream did not end with data: [DONE]"}
	case reply.String() != expectedReply:
		return sample{}, failure{kind: "malformed: streamed reply is not the echo", detail: reply.String()}
	}
	return s, nil
}

// failure is a request that did not succeed. kind groups failures in the
// report; detail is an example.
type failure struct{ kind, detail string }

func (f failure) Error() string { return f.kind + ": " + f.detail }

// tally counts failures by kind, keeping the first example of each.
type tally struct {
	counts  map[string]int
	example map[string]string
}

func (t *tally) add(err error) {
	var f failure
	if !errors.As(err, &f) {
		f = failure{kind: "error", detail: err.Error()}
	}
	if t.counts == nil {
		t.counts, t.example = map[string]int{}, map[string]string{}
	}
	if t.counts[f.kind] == 0 {
		t.example[f.kind] = f.detail
	}
	t.counts[f.kind]++
}

func (t *tally) merge(o tally) {
	for k, n := range o.counts {
		if t.counts == nil {
			t.counts, t.example = map[string]int{}, map[string]string{}
		}
		if t.counts[k] == 0 {
			t.example[k] = o.example[k]
		}
		t.counts[k] += n
	}
}

// total is the number of failures.
func (t tally) total() int {
	n := 0
	for _, c := range t.counts {
		n += c
	}
	return n
}

// clip shortens b for an error example.
func clip(b []byte) string {
	const limit = 200
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
