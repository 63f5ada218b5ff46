package gateway

import (
	"sync"
	"time"
)

// ChunkWriter sends a stream to the client. Open sends the status (200) and
// the SSE headers with the generation id (and whether only ZDR endpoints
// may serve); it is called once, before the first event of any kind. WriteChunk buffers one data event, WriteComment
// writes and flushes a comment line, Flush sends what is buffered, and
// WriteDone sends [DONE] and flushes.
type ChunkWriter interface {
	Open(generationID string, zdr bool)
	WriteChunk(data []byte) error
	WriteComment(text string) error
	Flush() error
	WriteDone() error
}

// KeepAliveText is the SSE comment sent while the upstream is silent.
const KeepAliveText = "PERPETUO PROCESSING"

// DefaultKeepAlive is the silence after which a keep-alive comment goes out:
// well under the 60 s idle timeout of common load balancers and proxies.
const DefaultKeepAlive = 15 * time.Second

// client is the client's side of one stream. It serialises what goes out:
// the relay's events and the keep-alive comments a timer sends while nothing
// else has gone out for the keep-alive interval. It opens the response
// (status and headers) with whichever comes first.
//
// The rule the gateway follows: until the first data event is out, the
// request may still fall back to another endpoint; an error then is a plain
// HTTP error if nothing at all went out, and an in-band error event (status
// 200) if a keep-alive comment did.
type client struct {
	w        ChunkWriter
	id       string
	zdr      bool
	onOpen   func() // once, when the headers go out
	interval time.Duration

	mu     sync.Mutex
	opened bool
	data   bool // a data event went out
	last   time.Time
	timer  *time.Timer
	done   bool // no more keep-alives
	err    error
}

// newClient returns the client side of a stream to w; with interval > 0 it
// sends keep-alive comments through silences of that length.
// Silences are measured on the wall clock, like the timer that ends them.
func newClient(w ChunkWriter, id string, zdr bool, interval time.Duration, onOpen func()) *client {
	c := &client{w: w, id: id, zdr: zdr, onOpen: onOpen, interval: interval, last: time.Now()}
	if interval > 0 {
		c.mu.Lock() // tick reads the timer
		c.timer = time.AfterFunc(interval, c.tick)
		c.mu.Unlock()
	}
	return c
}

// tick runs on the timer: a comment if the client heard nothing for a whole
// interval, and the timer re-armed for the end of the current silence.
func (c *client) tick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	now := time.Now()
	if wait := c.interval - now.Sub(c.last); wait > 0 {
		c.timer.Reset(wait)
		return
	}
	c.open()
	if c.err == nil {
		c.err = c.w.WriteComment(KeepAliveText)
	}
	if c.err != nil {
		c.done = true // the client is gone; the relay finds out on its next write
		return
	}
	c.last = now
	c.timer.Reset(c.interval)
}

func (c *client) open() {
	if !c.opened {
		c.opened = true
		c.w.Open(c.id, c.zdr)
		if c.onOpen != nil {
			c.onOpen()
		}
	}
}

// chunk writes one data event (flush says whether to send it at once).
func (c *client) chunk(data []byte, flush bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.open()
	c.data = true
	c.err = c.w.WriteChunk(data)
	if c.err == nil && flush {
		c.err = c.w.Flush()
	}
	c.last = time.Now()
	return c.err
}

// flush sends what is buffered.
func (c *client) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = c.w.Flush()
	}
	return c.err
}

// finish writes [DONE] and stops the keep-alives.
func (c *client) finish() error {
	c.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.open()
		c.err = c.w.WriteDone()
	}
	return c.err
}

// stop ends the keep-alives; it returns whether the response was opened.
// A tick running concurrently either finished before (its comment is out)
// or sees done and sends nothing.
func (c *client) stop() (opened bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	if c.timer != nil {
		c.timer.Stop()
	}
	return c.opened
}
