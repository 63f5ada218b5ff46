// Package logging keeps log output off the request path: handlers format a
// record into memory and return; a background goroutine writes buffered
// output to the real destination. When the destination falls so far behind
// that the memory bound is reached, whole writes (log lines) are dropped and
// counted rather than making a request wait: a stalled terminal or pipe must
// never stall the gateway.
package logging

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBufferSize is how many bytes a Writer holds in memory by default.
const DefaultBufferSize = 256 << 10

// Writer buffers writes in memory and writes them to its destination from a
// background goroutine. It double-buffers: Write appends to the active
// buffer under a short lock, and the flusher swaps in the spare buffer and
// writes the full one without holding that lock, so a slow destination only
// ever delays the flusher.
type Writer struct {
	dst   io.Writer
	limit int

	mu     sync.Mutex // guards buf and closed; held only for a copy
	buf    []byte
	closed bool

	flushMu sync.Mutex // serializes flushes (keeps output in order) and guards spare
	spare   []byte

	dropped atomic.Uint64
	wake    chan struct{} // buffered 1: a burst asks for an early flush
	done    chan struct{}
	wg      sync.WaitGroup
}

// Option configures a Writer.
type Option func(*Writer)

// WithBufferSize bounds the bytes held in memory (per buffer; the flusher
// holds a second one while writing). Writes that do not fit are dropped.
func WithBufferSize(n int) Option {
	return func(w *Writer) {
		if n > 0 {
			w.limit = n
		}
	}
}

// initialBufferSize is each buffer's capacity before a burst grows it.
const initialBufferSize = 16 << 10

// NewWriter returns a Writer over dst that flushes every interval, or sooner
// when the buffer is half full. Close stops it.
func NewWriter(dst io.Writer, interval time.Duration, opts ...Option) *Writer {
	w := &Writer{dst: dst, limit: DefaultBufferSize, wake: make(chan struct{}, 1), done: make(chan struct{})}
	for _, o := range opts {
		o(w)
	}
	// The buffers start small and grow by append up to the limit, so an
	// idle or quiet process does not hold two full ones.
	w.buf = make([]byte, 0, min(w.limit, initialBufferSize))
	w.spare = make([]byte, 0, min(w.limit, initialBufferSize))
	w.wg.Add(1)
	go w.loop(interval)
	return w
}

// Write implements io.Writer. It only copies p into memory and never waits
// on the destination. If p does not fit in what is left of the buffer (or
// the Writer is closed), p is dropped whole, so a line is never cut, and
// counted in Dropped. It always reports success: the caller is a log
// handler that could do nothing better with an error.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed || len(w.buf)+len(p) > w.limit {
		w.mu.Unlock()
		w.dropped.Add(1)
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	half := len(w.buf) >= w.limit/2
	w.mu.Unlock()
	if half {
		select {
		case w.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return len(p), nil
}

// Dropped is how many writes were dropped because the buffer was full.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Collector exports Dropped as perpetuo_log_lines_dropped_total, for the
// composition root to register.
func (w *Writer) Collector() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "perpetuo_log_lines_dropped_total",
		Help: "Log lines dropped because the log destination could not keep up.",
	}, func() float64 { return float64(w.Dropped()) })
}

func (w *Writer) loop(interval time.Duration) {
	defer w.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			return
		case <-t.C:
		case <-w.wake:
		}
		_ = w.Flush()
	}
}

// Flush writes what is buffered. It waits on the destination (writers do
// not), so call it from shutdown paths, never from a request.
func (w *Writer) Flush() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	full := w.buf
	w.buf = w.spare[:0]
	w.mu.Unlock()
	w.spare = full
	if len(full) == 0 {
		return nil
	}
	_, err := w.dst.Write(full)
	return err
}

// Close stops the background flusher and writes what is left. Later writes
// are dropped; later calls do nothing.
func (w *Writer) Close() error {
	w.mu.Lock()
	already := w.closed
	w.closed = true
	w.mu.Unlock()
	if already {
		return nil
	}
	close(w.done)
	w.wg.Wait()
	return w.Flush()
}
