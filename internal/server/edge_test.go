package server

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBearer(t *testing.T) {
	for h, want := range map[string]string{
		"Bearer pk_abc":    "pk_abc",
		"bearer pk_abc":    "pk_abc",
		"BEARER  pk_abc ":  "pk_abc",
		"Basic dXNlcjpwdw": "",
		"pk_abc":           "",
		"":                 "",
	} {
		require.Equal(t, want, bearer(h), h)
	}
}

func TestRefererAppDropsQueryAndFragment(t *testing.T) {
	require.Equal(t, "https://app.example.com/chat", refererApp("https://app.example.com/chat?token=secret#x"))
	require.Equal(t, "https://app.example.com/", refererApp("https://app.example.com/#frag"))
	require.Equal(t, "https://app.example.com", refererApp("https://app.example.com"))
}
