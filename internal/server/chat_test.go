package server

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNonTextFindsEveryNonTextPart: the shortcut for bodies without a
// "type" member never hides a part, however its key is spelled.
func TestNonTextFindsEveryNonTextPart(t *testing.T) {
	for body, want := range map[string]bool{
		`{"messages":[{"role":"user","content":"hi"}]}`:                                                       false,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`:                              false,
		`{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}`: false,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`:             true,
		`{"messages":[{"role":"user","content":[{"typ\u0065":"image_url","image_url":{"url":"x"}}]}]}`:        true,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"input_audio"}]}]}`:        true,
	} {
		require.Equal(t, want, nonText([]byte(body)), body)
	}
}
