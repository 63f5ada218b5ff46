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
type watchdog struct {
	limit  time.Duration // the silence allowed now
	idle   time.Duration // the silence allowed once kicked
	timer  *time.Timer
	fired  atomic.Bool
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
	limit := first
	w := &watchdog{limit: first, idle: idle, cancel: cancel}
	w.timer = time.AfterFunc(limit, func() {
		w.fired.Store(true)
		cancel()
	})
	return ctx, w
}

// kick restarts the silence count (a chunk arrived), from then on with the
// idle limit. kick and explain run on the call's goroutine only.
func (w *watchdog) kick() {
	w.limit = w.idle
	w.timer.Reset(w.limit)
}

// stop ends the watch and releases the call's context.
func (w *watchdog) stop() {
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
		"Provider %s sent nothing for %s; retry, or allow fallbacks.", provider, w.limit).WithCause(err)}
}
