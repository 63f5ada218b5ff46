package logging

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithoutAccess(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		log  func(l *slog.Logger)
		want string // "" when dropped
	}{
		{name: "plain record passes", log: func(l *slog.Logger) { l.Info("up") }, want: "level=INFO msg=up\n"},
		{name: "access logger is dropped", log: func(l *slog.Logger) { l.With("log", "access").Info("request", "status", 200) }},
		{name: "access attribute on the record is dropped", log: func(l *slog.Logger) { l.Info("request", "log", "access") }},
		{name: "access logger stays dropped below a group", log: func(l *slog.Logger) { l.With("log", "access").WithGroup("g").Info("request", "a", 1) }},
		{name: "access logger after other attributes is dropped", log: func(l *slog.Logger) { l.With("a", 1).With("log", "access").Error("request") }},
		{name: "other log names pass", log: func(l *slog.Logger) { l.With("log", "audit").Info("x") }, want: "level=INFO msg=x log=audit\n"},
		{name: "log=access inside a group passes", log: func(l *slog.Logger) { l.WithGroup("g").Info("x", "log", "access") }, want: "level=INFO msg=x g.log=access\n"},
		{name: "non-string value passes", log: func(l *slog.Logger) { l.Info("x", "log", 1) }, want: "level=INFO msg=x log=1\n"},
		{name: "level still applies", log: func(l *slog.Logger) { l.Debug("x") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			h := slog.NewTextHandler(&out, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			})
			tc.log(slog.New(WithoutAccess(h)))
			require.Equal(t, tc.want, out.String())
		})
	}
}

func TestWithoutAccessSkipsFormattingForTheAccessLogger(t *testing.T) {
	t.Parallel()
	l := slog.New(WithoutAccess(slog.NewTextHandler(&bytes.Buffer{}, nil))).With("log", "access")
	require.False(t, l.Enabled(context.Background(), slog.LevelError))
}
