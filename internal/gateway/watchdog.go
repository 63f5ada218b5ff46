package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/providers"
)

// Default upstream deadlines; Deps can override them.
const (
	// defaultStreamIdle: a stream that sends nothing (not even its first
	// chunk) for this long is cut and reported as a timeout.
	defaultStreamIdle = 2 * time.Minute
	// defaultAttemptTimeout bounds one non-streaming upstream call, which
	// sends nothing until it is done (long reasoning outputs take minutes).
	defaultAttemptTimeout = 10 * time.Minute
)

// watchdog cancels an upstream call that stays silent longer than its
// limit, so a hung provider can neither hold a request forever nor block a
// fallback.
//
// A kick only notes the time: resetting the timer on every streamed chunk
// cost a timer-heap update per chunk. When the timer fires it measures the
// silence since the last kick, and re-arms itself for the rest of the limit
// when the call was not silent that long (the keep-alive client does the
// same).
type watchdog struct {
	first  time.Duration // the silence allowed until the first kick
	idle   time.Duration // the silence allowed once kicked
	began  time.Time     // the monotonic origin of last
	last   atomic.Int64  // ns after began of the last kick (or of the start)
	kicked atomic.Bool
	timer  *time.Timer
	fired  atomic.Bool
	ended  atomic.Bool // stopped: the timer must not re-arm
	cancel context.CancelFunc
}

// watch returns a context for one upstream call, cancelled after limit
// unless kicked.
func watch(parent context.Context, limit time.Duration) (context.Context, *watchdog) {
	return watchFirst(parent, limit, limit)
}

// watchFirst is watch with a first silence (until the first kick) of first,
// and idle after that.
func watchFirst(parent context.Context, first, idle time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancel(parent)
	w := &watchdog{first: first, idle: idle, began: time.Now(), cancel: cancel}
	w.timer = time.AfterFunc(first, w.check)
	return ctx, w
}

// check runs on the timer: it cancels the call if it was silent for its
// whole limit, else waits for the rest of it.
func (w *watchdog) check() {
	if w.ended.Load() {
		return
	}
	limit := w.limit()
	if rest := limit - (time.Since(w.began) - time.Duration(w.last.Load())); rest > 0 {
		w.timer.Reset(rest)
		return
	}
	w.fired.Store(true)
	w.cancel()
}

// limit is the silence allowed now.
func (w *watchdog) limit() time.Duration {
	if w.kicked.Load() {
		return w.idle
	}
	return w.first
}

// kick restarts the silence count (a chunk arrived), from then on with the
// idle limit. kick and explain run on the call's goroutine only.
func (w *watchdog) kick() {
	w.last.Store(int64(time.Since(w.began)))
	if !w.kicked.Load() {
		w.kicked.Store(true)
		if w.idle < w.first { // the timer is set for the longer first limit
			w.timer.Reset(w.idle)
		}
	}
}

// stop ends the watch and releases the call's context.
func (w *watchdog) stop() {
	w.ended.Store(true)
	w.timer.Stop()
	w.cancel()
}

// explain turns the error of a call the watchdog cut into a timeout.
func (w *watchdog) explain(provider string, err error) error {
	if err == nil || !w.fired.Load() {
		return err
	}
	var pe *providers.Error
	status := 0
	if errors.As(err, &pe) {
		status = pe.Status
	}
	return &providers.Error{Status: status, Retryable: true, Client: apierr.New(http.StatusGatewayTimeout, apierr.Timeout,
		"Provider %s sent nothing for %s; retry, or allow fallbacks.", provider, w.limit()).WithCause(err)}
}
