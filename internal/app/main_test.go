package app

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when anything the gateway started (record
// writers, invalidation listeners, upstream streams, servers) outlives the
// tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
