// Package apierrtest checks errors against the envelope in tests.
package apierrtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
)

// Require asserts err is the API error of status and type, naming field in
// its metadata when field is set, and returns it.
func Require(t testing.TB, err error, status int, typ apierr.Type, field string) *apierr.Error {
	t.Helper()
	require.Error(t, err)
	e := apierr.From(err)
	require.Equal(t, status, e.Status, e.Message)
	require.Equal(t, typ, e.Type, e.Message)
	if field != "" {
		require.Equal(t, field, e.Metadata["field"], e.Message)
	}
	return e
}
