package logging

import (
	"bytes"
	"sync"
	"testing"
	"time"

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
