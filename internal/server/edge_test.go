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
