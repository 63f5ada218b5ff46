package mockupstream

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/perpetuo/perpetuo/internal/sse"
)

// streamCompletion writes c as a server-sent event stream paced by p. It
// returns early when the client goes away or a write fails, and panics with
// http.ErrAbortHandler for a planned mid-stream failure.
func streamCompletion(w http.ResponseWriter, r *http.Request, c completion, p plan) {
	if !sleep(r, p.latency+p.ttft) {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	abortAfter := 0 // content chunks before the abort, 0 = never
	if p.midStreamFailAfter > 0 {
		abortAfter = min(p.midStreamFailAfter, len(c.words))
	}
	interval := pace(p.tokensPerSecond)
	for i, ch := range c.chunks() {
		if i > 1 && i <= len(c.words) && !sleep(r, interval) {
			return
		}
		if !send(w, rc, ch) {
			return
		}
		if i == abortAfter && abortAfter > 0 {
			panic(http.ErrAbortHandler)
		}
		if p.midStreamError && i == midstreamFailChunks {
			// OpenRouter's in-band error: the code is the HTTP status it
			// would have answered with.
			if sse.WriteData(w, []byte(`{"error":{"code":503,"message":"The upstream is overloaded."}}`)) == nil {
				_ = flush(rc)
			}
			return
		}
	}
	if err := sse.WriteDone(w); err == nil {
		_ = flush(rc)
	}
}

// pace is the delay between content chunks at tokensPerSecond.
func pace(tokensPerSecond float64) time.Duration {
	if tokensPerSecond <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / tokensPerSecond)
}

// send writes and flushes one chunk, reporting whether the stream may go on.
func send(w http.ResponseWriter, rc *http.ResponseController, ch chunk) bool {
	data, err := json.Marshal(ch)
	if err != nil {
		return false
	}
	if err := sse.WriteData(w, data); err != nil {
		return false
	}
	return flush(rc) == nil
}

// flush sends buffered output to the client; writers that cannot flush are
// tolerated.
func flush(rc *http.ResponseController) error {
	if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}
