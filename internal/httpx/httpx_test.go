package httpx

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadAll(t *testing.T) {
	body := strings.Repeat("x", 5000)
	for _, hint := range []int64{-1, 0, 10, 5000, 9000} {
		got, err := ReadAll(strings.NewReader(body), hint)
		require.NoError(t, err)
		require.Equal(t, body, string(got), "hint %d", hint)
	}
	got, err := ReadAll(strings.NewReader(body), 5000)
	require.NoError(t, err)
	require.Equal(t, 5001, cap(got), "a body of its declared size fits the first allocation")

	boom := errors.New("boom")
	got, err = ReadAll(io.MultiReader(strings.NewReader("abc"), iotestErr{boom}), 10)
	require.ErrorIs(t, err, boom)
	require.Equal(t, "abc", string(got))
	require.True(t, bytes.Equal([]byte("abc"), got))
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

func BenchmarkReadAll(b *testing.B) {
	body := strings.Repeat("x", 1500)
	b.Run("io.ReadAll", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = io.ReadAll(strings.NewReader(body))
		}
	})
	b.Run("sized", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ReadAll(strings.NewReader(body), int64(len(body)))
		}
	})
}
