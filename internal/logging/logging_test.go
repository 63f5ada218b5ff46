package logging

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stalled is a destination whose writes block until release is closed, like
// a terminal nobody reads or a full pipe.
type stalled struct {
	syncBuf
	entered chan struct{} // closed when the first write arrives
	once    sync.Once
	release chan struct{}
}

func newStalled() *stalled {
	return &stalled{entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *stalled) Write(p []byte) (int, error) {
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.syncBuf.Write(p)
}

func line(i int) []byte { return fmt.Appendf(nil, "line %04d\n", i) }

func TestWriterFlushesInTheBackgroundAndOnClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	out := &syncBuf{}
	w := NewWriter(out, 10*time.Millisecond)
	_, err := w.Write([]byte("first\n"))
	require.NoError(t, err)
	require.Empty(t, out.String(), "a write returns before reaching the destination")
	require.Eventually(t, func() bool { return out.String() == "first\n" }, time.Second, 5*time.Millisecond)

	w2 := NewWriter(out, time.Hour)
	_, _ = w2.Write([]byte("last\n"))
	require.NoError(t, w2.Close())
	require.Equal(t, "first\nlast\n", out.String(), "Close writes what is left")
	require.NoError(t, w.Close())
}

// TestWriterNeverWaitsOnAStalledDestination is the reason Writer exists: with
// the destination blocked, writes still return at once, the overflow is
// dropped whole and counted, and everything kept arrives intact and in order.
func TestWriterNeverWaitsOnAStalledDestination(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // cleanups run last-first: this one last
	dst := newStalled()
	released := sync.OnceFunc(func() { close(dst.release) })
	w := NewWriter(dst, time.Millisecond, WithBufferSize(4<<10))
	t.Cleanup(func() { released(); _ = w.Close() }) // also when an assertion fails

	_, _ = w.Write(line(0))
	select {
	case <-dst.entered: // the flusher is now stuck inside dst.Write
	case <-time.After(time.Second):
		t.Fatal("the flusher never wrote")
	}

	const n = 1000 // 10 KB of lines against a 4 KB buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			_, _ = w.Write(line(i))
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("writes waited on the stalled destination")
	}
	dropped := w.Dropped()
	require.NotZero(t, dropped, "a full buffer drops instead of growing")

	released()
	require.NoError(t, w.Close())
	lines := strings.Split(strings.TrimSuffix(dst.String(), "\n"), "\n")
	require.Len(t, lines, n+1-int(dropped), "everything not dropped arrives")
	prev := -1
	for _, l := range lines {
		var i int
		_, err := fmt.Sscanf(l, "line %04d", &i)
		require.NoError(t, err, "line %q is intact", l)
		require.Equal(t, string(line(i)), l+"\n", "line %q is intact", l)
		require.Greater(t, i, prev, "lines stay in order")
		prev = i
	}
	require.Equal(t, "line 0000", lines[0], "the line the flusher held arrives first")
}

func TestWriterWakesEarlyWhenHalfFull(t *testing.T) {
	defer goleak.VerifyNone(t)
	out := &syncBuf{}
	w := NewWriter(out, time.Hour, WithBufferSize(100))
	defer func() { require.NoError(t, w.Close()) }()
	burst := strings.Repeat("x", 59) + "\n"
	_, _ = w.Write([]byte(burst))
	require.Eventually(t, func() bool { return out.String() == burst }, time.Second, 5*time.Millisecond,
		"a burst is written before the next tick")
}

func TestWriterDropsWholeWrites(t *testing.T) {
	defer goleak.VerifyNone(t)
	cases := []struct {
		name    string
		writes  []string
		want    string
		dropped uint64
	}{
		{name: "fits", writes: []string{"aaaa\n", "bbbb\n"}, want: "aaaa\nbbbb\n"},
		{name: "larger than the buffer", writes: []string{strings.Repeat("y", 17) + "\n", "ok\n"}, want: "ok\n", dropped: 1},
		{name: "would cross the bound", writes: []string{"aaaaaa\n", "bbbbbbbbbb\n", "c\n"}, want: "aaaaaa\nc\n", dropped: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := &syncBuf{}
			w := NewWriter(out, time.Hour, WithBufferSize(16))
			for _, s := range tc.writes {
				n, err := w.Write([]byte(s))
				require.NoError(t, err)
				require.Equal(t, len(s), n)
			}
			require.NoError(t, w.Close())
			require.Equal(t, tc.want, out.String())
			require.Equal(t, tc.dropped, w.Dropped())
		})
	}
}

func TestWriterDropsWritesAfterClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	out := &syncBuf{}
	w := NewWriter(out, time.Hour)
	require.NoError(t, w.Close())
	_, _ = w.Write([]byte("late\n"))
	require.Empty(t, out.String())
	require.Equal(t, uint64(1), w.Dropped())
}

func TestWriterCollectorExportsDropped(t *testing.T) {
	defer goleak.VerifyNone(t)
	w := NewWriter(&syncBuf{}, time.Hour, WithBufferSize(4))
	_, _ = w.Write([]byte("too long\n"))
	_, _ = w.Write([]byte("too long\n"))
	require.NoError(t, w.Close())
	reg := prometheus.NewRegistry()
	reg.MustRegister(w.Collector())
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	require.Equal(t, "perpetuo_log_lines_dropped_total", mfs[0].GetName())
	require.Equal(t, 2.0, mfs[0].GetMetric()[0].GetCounter().GetValue())
}
