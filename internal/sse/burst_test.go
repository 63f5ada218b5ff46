package sse

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// bursts is a source that, like an HTTP body over a buffered connection,
// returns at most what its current burst still holds: a burst is what
// arrived together, and reading past it would wait for the next one.
type bursts struct{ left []string }

func (b *bursts) Read(p []byte) (int, error) {
	for len(b.left) > 0 && b.left[0] == "" {
		b.left = b.left[1:]
	}
	if len(b.left) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.left[0])
	b.left[0] = b.left[0][n:]
	return n, nil
}

// relayFlushes reads every event as the gateway's relay does and counts
// its flushes: one whenever the next event is not already read in full.
func relayFlushes(t *testing.T, src io.Reader) (events, flushes int, r *Reader) {
	t.Helper()
	r = NewReader(src)
	for {
		_, err := r.Next()
		if err == io.EOF {
			return events, flushes, r
		}
		require.NoError(t, err)
		events++
		if !r.Ready() {
			flushes++
		}
	}
}

func event(i int) string {
	return fmt.Sprintf("data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word %03d \"}}]}\n\n", i)
}

func TestABurstIsReadWhole(t *testing.T) {
	// Five bursts of 60 events (about 5 KiB each, more than a socket
	// read's 4 KiB): with the 1 KiB buffer kept, every burst would end at
	// each KiB, five flushes a burst. The buffer grows at once to 8 KiB
	// when a read fills it, so a burst ends once, plus the read that grew it.
	var src bursts
	for b := range 5 {
		var sb strings.Builder
		for i := range 60 {
			sb.WriteString(event(b*60 + i))
		}
		src.left = append(src.left, sb.String())
	}
	events, flushes, r := relayFlushes(t, &src)
	require.Equal(t, 300, events)
	require.LessOrEqual(t, flushes, 5+1, "one flush per burst, besides the read that grew the buffer")
	require.Equal(t, burstBufferSize, len(r.lines.buf), "grown once, straight to its burst size")
}

func TestASlowStreamKeepsTheSmallBuffer(t *testing.T) {
	// Events as a slow upstream sends them, each split over two reads: no
	// read fills the buffer, which stays at 1 KiB for the stream's life.
	var src bursts
	for i := range 200 {
		e := event(i)
		src.left = append(src.left, e[:len(e)/2], e[len(e)/2:])
	}
	events, flushes, r := relayFlushes(t, &src)
	require.Equal(t, 200, events)
	require.Equal(t, 200, flushes, "each event goes out as it arrives")
	require.Equal(t, initialBufferSize, len(r.lines.buf))
}

// watched is a source of bursts that fails the test when it is read while
// the reader said the next event was already in hand.
type watched struct {
	bursts
	t      *testing.T
	forbid bool
}

func (w *watched) Read(p []byte) (int, error) {
	if w.forbid {
		w.t.Fatalf("Ready was true, but Next read the source again (left: %q)", w.left)
	}
	return w.bursts.Read(p)
}

// TestReadyNeverPromisesAWait: whatever mix of events, comments and
// dataless blocks arrives, cut into bursts anywhere, Ready is true only
// when the next Next returns without reading the source.
func TestReadyNeverPromisesAWait(t *testing.T) {
	blocks := []string{"data: a\n\n", ": keep-alive\n\n", "event: ping\n\n", "data: b\r\n\r\n",
		": c\r\n\r\n", "data: x\ndata: y\n\n", "id: 3\n\n", "data\r\r", "\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		var text strings.Builder
		for range 1 + rng.IntN(8) {
			text.WriteString(blocks[rng.IntN(len(blocks))])
		}
		s := text.String()
		var src watched
		src.t = t
		for len(s) > 0 { // cut into bursts anywhere, even inside a line ending
			n := 1 + rng.IntN(len(s))
			src.left, s = append(src.left, s[:n]), s[n:]
		}
		r := NewReader(&src)
		for {
			_, err := r.Next()
			src.forbid = false
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			src.forbid = r.Ready()
		}
	}
}
