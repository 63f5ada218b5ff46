package logging

import (
	"context"
	"log/slog"
)

// WithoutAccess wraps h so that the access log, the records carrying the
// top-level attribute log=access (as the server's access logger does), is
// dropped and everything else passes. It lets an operator switch the access
// log off at the handler, whoever built the access logger.
func WithoutAccess(h slog.Handler) slog.Handler { return accessFilter{Handler: h} }

// accessFilter drops access records. mute is set once a logger has gained
// log=access through With, so its records are dropped before formatting.
type accessFilter struct {
	slog.Handler
	mute bool
}

// Enabled implements slog.Handler: false for a muted logger, so the caller
// skips building the record at all.
func (h accessFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return !h.mute && h.Handler.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h accessFilter) Handle(ctx context.Context, r slog.Record) error {
	if h.mute {
		return nil
	}
	access := false
	r.Attrs(func(a slog.Attr) bool {
		access = isAccess(a)
		return !access
	})
	if access {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h accessFilter) WithAttrs(as []slog.Attr) slog.Handler {
	if h.mute {
		return h
	}
	for _, a := range as {
		if isAccess(a) {
			return accessFilter{Handler: h.Handler, mute: true}
		}
	}
	return accessFilter{Handler: h.Handler.WithAttrs(as)}
}

// WithGroup implements slog.Handler. Attributes added inside a group are
// never top-level, so below a group there is nothing left to filter.
func (h accessFilter) WithGroup(name string) slog.Handler {
	if h.mute || name == "" {
		return h
	}
	return h.Handler.WithGroup(name)
}

func isAccess(a slog.Attr) bool {
	v := a.Value.Resolve()
	return a.Key == "log" && v.Kind() == slog.KindString && v.String() == "access"
}
