package app

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestJavaScriptClients drives the gateway from Node: the generated
// TypeScript SDK (@perpetuo/sdk) for account and management routes, and
// the official `openai` npm package for completions, JSON and streaming.
// Node is required (make test installs it when missing): a missing runtime
// fails the test rather than skipping it.
func TestJavaScriptClients(t *testing.T) {
	t.Parallel()
	sdk := typescriptSDK(t)
	e := setup(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(sdk, "test", "smoke.mjs"), e.srv.URL, e.key)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node test/smoke.mjs:\n%s", out)
	require.Equal(t, "ok", strings.TrimSpace(string(out)))
}

// typescriptSDK installs the SDK's pinned dependencies when missing, builds
// it, and returns its directory.
func typescriptSDK(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "sdk", "typescript"))
	require.NoError(t, err)
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is required for the JavaScript client tests: run 'make test' (it installs nodejs) or install nodejs and npm")
	}
	run := func(args ...string) {
		cmd := exec.Command("npm", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm %s:\n%s", strings.Join(args, " "), out)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openapi-fetch")); err != nil {
		run("ci", "--no-audit", "--no-fund")
	}
	run("run", "build")
	return dir
}
