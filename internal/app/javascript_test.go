package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
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

// TestJavaScriptClientsStreamThroughKeepAlives: the `openai` npm package
// and the Vercel AI SDK stream through keep-alive comments (a slow
// upstream, keep-alives every 50 ms), and surface a stream cut mid-way as an
// error.
func TestJavaScriptClientsStreamThroughKeepAlives(t *testing.T) {
	t.Parallel()
	sdk := typescriptSDK(t)
	e := setupWith(t, map[string]http.Handler{
		"mock":  mockupstream.New(mockupstream.Config{TTFT: 300 * time.Millisecond, TokensPerSecond: 8}),
		"flaky": mockupstream.New(mockupstream.Config{MidStreamFailAfter: 2}),
	}, func(o *Options) { o.KeepAlive = 50 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(sdk, "test", "streaming.mjs"), e.srv.URL, e.key)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node test/streaming.mjs:\n%s", out)
	require.Equal(t, "ok", strings.TrimSpace(string(out)))
}

// typescriptSDK installs the SDK's pinned dependencies when missing, builds
// it once for every test that needs it, and returns its directory.
func typescriptSDK(t *testing.T) string {
	t.Helper()
	sdkOnce.Do(func() { sdkDir, sdkErr = buildTypescriptSDK() })
	require.NoError(t, sdkErr)
	return sdkDir
}

var (
	sdkOnce sync.Once
	sdkDir  string
	sdkErr  error
)

func buildTypescriptSDK() (string, error) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "sdk", "typescript"))
	if err != nil {
		return "", err
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("node is required for the JavaScript client tests: run 'make test' (it installs nodejs) or install nodejs and npm")
	}
	run := func(args ...string) error {
		cmd := exec.Command("npm", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("npm %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	for _, pkg := range []string{"openapi-fetch", "openai", "ai", "@ai-sdk/openai-compatible"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
			if err := run("ci", "--no-audit", "--no-fund"); err != nil {
				return "", err
			}
			break
		}
	}
	return dir, run("run", "build")
}

// TestJavaScriptResponsesAPI: the official `openai` npm package's
// Responses API against /v1/responses (test/responses.mjs), served by
// OpenAI- and Anthropic-family endpoints.
func TestJavaScriptResponsesAPI(t *testing.T) {
	t.Parallel()
	sdk := typescriptSDK(t)
	e := setup(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(sdk, "test", "responses.mjs"), e.srv.URL, e.key)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node test/responses.mjs:\n%s", out)
	require.Equal(t, "ok", strings.TrimSpace(string(out)))
}
