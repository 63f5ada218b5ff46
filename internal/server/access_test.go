package server

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAccessLineIsWhatInfoWrites: the access line written straight to the
// handler reads exactly as Logger.Info wrote it, in both formats.
func TestAccessLineIsWhatInfoWrites(t *testing.T) {
	noTime := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	for name, handler := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, noTime) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, noTime) },
	} {
		var got, want bytes.Buffer
		s := &Server{access: slog.New(handler(&got)).With("log", "access")}
		s.logAccess("req_1", "POST", "/v1/chat/completions", 200, 1500*time.Millisecond, 1234)
		slog.New(handler(&want)).With("log", "access").Info("request", "request_id", "req_1", "method", "POST",
			"path", "/v1/chat/completions", "status", 200, "duration_ms", int64(1500), "bytes", int64(1234))
		require.Equal(t, want.String(), got.String(), name)
		require.NotEmpty(t, got.String())
	}
	// Below its level, nothing is written.
	var quiet bytes.Buffer
	s := &Server{access: slog.New(slog.NewTextHandler(&quiet, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	s.logAccess("req_1", "GET", "/", 200, time.Millisecond, 1)
	require.Empty(t, quiet.String())
}
