package logging

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLevel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{in: "", want: slog.LevelInfo},
		{in: "debug", want: slog.LevelDebug},
		{in: "info", want: slog.LevelInfo},
		{in: "WARN", want: slog.LevelWarn},
		{in: " error ", want: slog.LevelError},
		{in: "warning", wantErr: true},
		{in: "verbose", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseLevel(tc.in)
			if tc.wantErr {
				require.ErrorContains(t, err, "use debug, info, warn or error")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseSwitch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{in: "", want: true},
		{in: "on", want: true},
		{in: "OFF", want: false},
		{in: "false", wantErr: true},
		{in: "1", wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSwitch(tc.in)
			if tc.wantErr {
				require.ErrorContains(t, err, "use on or off")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
