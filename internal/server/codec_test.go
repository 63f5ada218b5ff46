package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/oapi-codegen/runtime"
	"github.com/stretchr/testify/require"
)

// TestBodyCodecDecodesAsTheDecoderAndKeepsNoBuffer: request bodies decode
// through the pooled codec as they do through a json.Decoder, and a value
// decoded earlier shares nothing with the buffer the next decode reuses.
func TestBodyCodecDecodesAsTheDecoderAndKeepsNoBuffer(t *testing.T) {
	type body struct {
		Model string          `json:"model"`
		Extra json.RawMessage `json:"extra"`
		N     *int            `json:"n"`
	}
	first := `{"model":"aaaa/bbbb","extra":{"k":[1,2]},"n":3}`
	var got body
	require.NoError(t, runtime.JSONUnmarshalRead(strings.NewReader(first), &got))
	var want body
	require.NoError(t, json.NewDecoder(strings.NewReader(first)).Decode(&want))
	require.Equal(t, want, got)

	var second body
	require.NoError(t, runtime.JSONUnmarshalRead(strings.NewReader(`{"model":"zzzz/yyyy","extra":{"k":[9,9]},"n":4}`), &second))
	require.Equal(t, want, got, "the first value is unchanged by the second decode")
	require.Equal(t, "zzzz/yyyy", second.Model)

	require.Error(t, runtime.JSONUnmarshalRead(strings.NewReader(`{"model":`), &got))
	var typed struct{ N int }
	require.Error(t, runtime.JSONUnmarshalRead(strings.NewReader(`{"N":"three"}`), &typed))
}
