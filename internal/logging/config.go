package logging

import (
	"fmt"
	"log/slog"
	"strings"
)

// ParseLevel reads a log level setting: debug, info, warn or error
// (any case); empty means info.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q: use debug, info, warn or error", s)
}

// ParseSwitch reads an on/off setting (any case); empty means on, so a
// switch left unset keeps the default behaviour.
func ParseSwitch(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("unknown value %q: use on or off", s)
}
