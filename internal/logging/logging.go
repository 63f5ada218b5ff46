// Package logging keeps log output off the request path: handlers format a
// record into memory and return; a background goroutine writes buffered
// output to the real destination. Nothing is dropped: Close writes what is
// left, and a full buffer is written by whoever fills it.
package logging

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// Writer buffers writes and flushes them in the background.
type Writer struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	done chan struct{}
	wg   sync.WaitGroup
}

// NewWriter returns a Writer over w that flushes every interval.
func NewWriter(w io.Writer, interval time.Duration) *Writer {
	aw := &Writer{buf: bufio.NewWriterSize(w, 256<<10), done: make(chan struct{})}
	aw.wg.Add(1)
	go aw.loop(interval)
	return aw
}

// Write implements io.Writer: a memory copy unless the buffer is full.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
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
			_ = w.Flush()
		}
	}
}

// Flush writes what is buffered.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Flush()
}

// Close stops the background flusher and writes what is left.
func (w *Writer) Close() error {
	close(w.done)
	w.wg.Wait()
	return w.Flush()
}
