package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perpetuo/perpetuo/internal/gateway"
)

// Detached streams. Once StreamsOnHandlers streams run on their handlers,
// the next stream over HTTP/1.1 whose first chunk has arrived leaves its
// handler: the connection is hijacked and a goroutine of its own
// relays the rest, writing the chunked body itself. The handler's deep
// stack, net/http's connection buffers, response and request, and its
// background read all go away while the stream is held; a held stream keeps
// the relay's stack and the upstream's state. The client hanging up still
// cuts the stream at once (hangups). When the stream ends, the connection
// goes back to the http.Server it came from (http.ServerContextKey), served
// as a new connection, so the client's keep-alive connection carries its
// next request as if nothing had happened. Streams over HTTP/2 (which
// cannot be hijacked) stay on their handlers.
//
// http.Server.Shutdown does not wait for hijacked connections: Server.Shutdown
// does, for the detached streams.

// defaultStreamsOnHandlers: a few MiB of handlers' memory, and short
// streams at a few in flight pay nothing for detaching (about a fifth more
// CPU per stream, and 0.1-0.2 ms on the first chunk, in the bench's stream
// sections).
const defaultStreamsOnHandlers = 256

// detacher tracks the detached streams, for Shutdown.
type detacher struct {
	hangups // notices clients hanging up on detached streams

	mu      sync.Mutex
	running map[*detached]struct{}
	closed  bool          // shutting down: no more detaching
	idle    chan struct{} // closed when running empties, while closed
}

// detached is one relay off its handler.
type detached struct {
	conn   net.Conn // under detacher.mu
	cancel context.CancelFunc
}

// Shutdown stops detaching, waits for the detached streams to end until ctx
// is done, then cuts the rest (their records say the client went away) and
// returns ctx's error. Streams still on their handlers are the http.Server's.
func (s *Server) Shutdown(ctx context.Context) error {
	d := &s.streams
	d.mu.Lock()
	d.closed = true
	if d.idle == nil {
		d.idle = make(chan struct{})
		if len(d.running) == 0 {
			close(d.idle)
		}
	}
	idle := d.idle
	d.mu.Unlock()
	select {
	case <-idle:
		d.hangups.close()
		return nil
	case <-ctx.Done():
	}
	d.mu.Lock()
	for r := range d.running {
		r.cancel()
		if r.conn != nil { // nil: being hijacked; its relay sees the cancelled context
			_ = r.conn.Close()
		}
	}
	d.mu.Unlock()
	<-idle // a cut relay ends at its next step: the upstream read and the write both fail
	d.hangups.close()
	return ctx.Err()
}

// stream serves a stream: opened on the handler, whose errors before the
// first chunk are plain HTTP errors, then relayed off it when the
// connection can be detached, else on it. skin turns the SSE writer into
// the API's event stream.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, c gateway.Caller, req gateway.Request,
	skin func(*sseWriter) gateway.ChunkWriter) error {
	out := &sseWriter{w: w, rc: http.NewResponseController(w), idle: s.streamIdle}
	st := stateOf(ctx)
	srv, _ := ctx.Value(http.ServerContextKey).(*http.Server)
	if !st.http11 || srv == nil || !s.streams.open() || s.onHandlers.Load() < s.keepOn {
		s.onHandlers.Add(1)
		defer s.onHandlers.Add(-1)
		return s.gateway.Stream(ctx, c, req, skin(out))
	}
	// The relay may outlive the handler, and with it the request's context:
	// until it detaches, the request's end still cuts it.
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	relayed := false // off the handler: the relay cancels dctx
	defer func() {
		if !relayed {
			cancel()
		}
	}()
	unlink := context.AfterFunc(ctx, cancel)
	rl, err := s.gateway.OpenStream(dctx, c, req, skin(out))
	if rl == nil {
		return err
	}
	if !unlink() { // the client is gone already
		rl.Run(dctx)
		return nil
	}
	d := &detached{cancel: cancel}
	var brw *bufio.ReadWriter
	var conn net.Conn
	rl.Opened(func() {
		if !s.streams.add(d) {
			return
		}
		if conn, brw, err = out.detach(); err != nil {
			s.streams.remove(d)
			conn = nil
			return
		}
		s.streams.hijacked(d, conn)
	})
	if conn == nil { // HTTP/2 underneath, a writer that cannot hijack, or shutting down
		defer context.AfterFunc(ctx, cancel)()
		rl.Run(dctx)
		return nil
	}
	after := &afterward{}
	st.after = after
	keepAlive := st.keepAlive
	relayed = true
	go s.relayDetached(dctx, d, rl, out, srv, conn, buffered(brw.Reader), keepAlive, after)
	return nil
}

// relayDetached relays a detached stream to its end, ends the chunked body
// and hands the connection back (or closes it).
func (s *Server) relayDetached(ctx context.Context, d *detached, rl *gateway.Relay, out *sseWriter,
	srv *http.Server, conn net.Conn, buffered []byte, keepAlive bool, after *afterward) {
	w := s.streams.watch(conn, buffered, d.cancel)
	defer func() {
		if v := recover(); v != nil {
			s.metrics.panicked()
			s.log.Error("panic relaying a detached stream", "panic", v, "stack", string(debug.Stack()))
			_ = conn.Close()
			_, _ = w.stop()
		}
		d.cancel()
		s.streams.remove(d)
		after.end(out.sent)
	}()
	rl.Run(ctx)
	err := out.end()
	pending, werr := w.stop()
	if err != nil || werr != nil || !keepAlive || ctx.Err() != nil || !s.streams.open() {
		_ = conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	if !give(srv, reuse(conn, pending)) {
		_ = conn.Close()
	}
}

func (d *detacher) open() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.closed
}

func (d *detacher) add(r *detached) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	if d.running == nil {
		d.running = map[*detached]struct{}{}
	}
	d.running[r] = struct{}{}
	return true
}

// hijacked records r's connection, for Shutdown to close.
func (d *detacher) hijacked(r *detached, conn net.Conn) {
	d.mu.Lock()
	r.conn = conn
	d.mu.Unlock()
}

func (d *detacher) remove(r *detached) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.running[r]; !ok {
		return
	}
	delete(d.running, r)
	if len(d.running) == 0 && d.idle != nil {
		close(d.idle)
	}
}

// give hands a connection back to srv, to be served as a new one; false
// when srv no longer takes connections (it is shutting down).
func give(srv *http.Server, c net.Conn) bool {
	l := &oneConn{c: c}
	_ = srv.Serve(l) // returns once it took c, or at once when shutting down
	return l.taken
}

// detach flushes what net/http buffered (the headers at least) and takes
// the connection over; events then go out as chunks this writer frames.
func (s *sseWriter) detach() (net.Conn, *bufio.ReadWriter, error) {
	if err := s.rc.Flush(); err != nil {
		return nil, nil, err
	}
	conn, brw, err := s.rc.Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Nothing of net/http's is needed any more: holding the response would
	// hold its connection's buffers, headers and request for the stream's life.
	s.conn, s.w, s.rc = conn, nil, nil
	return conn, brw, nil
}

// end writes the chunked body's last chunk.
func (s *sseWriter) end() error {
	s.out = append(s.out, "0\r\n\r\n"...)
	return s.Flush()
}

// appendChunk frames b as one chunk of a chunked body.
func appendChunk(dst, b []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(b)), 16)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// buffered is what the hijacked connection's reader had read ahead: the
// start of a pipelined request.
func buffered(r *bufio.Reader) []byte {
	b, _ := r.Peek(r.Buffered())
	return bytes.Clone(b)
}

// watch is a detached connection being watched for its client's hang-up.
type watch interface {
	// stop ends the watch, and returns what the client sent ahead (the
	// start of its next request), or the error it got from the connection.
	stop() (pending []byte, err error)
}

// readWatch watches conn with a read pending on it, as net/http's
// background read does for a handler: a goroutine per connection.
func readWatch(conn net.Conn, pre []byte, cut func()) watch {
	w := &reader{conn: conn, pre: pre, done: make(chan struct{})}
	if len(pre) > 0 { // the client sent its next request: its hang-up can wait for a write
		close(w.done)
		return w
	}
	go func() {
		defer close(w.done)
		w.n, w.err = conn.Read(w.b[:])
		if w.n == 0 && !w.stopping.Load() {
			cut()
		}
	}()
	return w
}

type reader struct {
	conn     net.Conn
	pre      []byte // read ahead before detaching
	b        [1]byte
	n        int
	err      error
	stopping atomic.Bool
	done     chan struct{}
}

func (w *reader) stop() ([]byte, error) {
	w.stopping.Store(true)
	_ = w.conn.SetReadDeadline(aLongTimeAgo)
	<-w.done
	if w.n > 0 {
		return append(w.pre, w.b[0]), nil
	}
	if w.err != nil && !errors.Is(w.err, os.ErrDeadlineExceeded) {
		return nil, w.err
	}
	return w.pre, nil
}

var aLongTimeAgo = time.Unix(1, 0)

// reuse is the connection as the http.Server should get it back: with the
// bytes read ahead of it read first.
func reuse(c net.Conn, pre []byte) net.Conn {
	if len(pre) == 0 {
		return c
	}
	return &prefixConn{Conn: c, pre: pre}
}

type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// afterward is a detached stream's end, which the access log waits for to
// log the stream's whole duration and size.
type afterward struct {
	mu    sync.Mutex
	done  bool
	bytes int64
	fs    []func(bytes int64)
}

// then runs f with the bytes sent after detaching, once the stream ended.
func (a *afterward) then(f func(bytes int64)) {
	a.mu.Lock()
	if !a.done {
		a.fs = append(a.fs, f)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	f(a.bytes)
}

func (a *afterward) end(bytes int64) {
	a.mu.Lock()
	a.done, a.bytes = true, bytes
	fs := a.fs
	a.mu.Unlock()
	for _, f := range fs {
		f(bytes)
	}
}

// oneConn is a listener that yields one connection, then ends.
type oneConn struct {
	c     net.Conn
	taken bool
}

func (l *oneConn) Accept() (net.Conn, error) {
	if l.taken {
		return nil, io.EOF
	}
	l.taken = true
	return l.c, nil
}

func (l *oneConn) Close() error { return nil }

func (l *oneConn) Addr() net.Addr { return l.c.LocalAddr() }
