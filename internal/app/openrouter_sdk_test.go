package app

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// TestOpenRouterSDK runs OpenRouter's official TypeScript SDK
// (@openrouter/sdk, pinned in testdata/openrouter-sdk) against the gateway
// under /api/v1. The SDK validates every response against OpenRouter's
// schema, so a required field dropped from a response fails the test; and
// each error class (401, 402, 403, 404, 429) must surface as the SDK's
// typed error with the gateway's status and message.
func TestOpenRouterSDK(t *testing.T) {
	t.Parallel()
	dir := openRouterSDK(t)
	e := setup(t, map[string]http.Handler{
		"flaky": mockupstream.New(mockupstream.Config{FailureRate: 1, FailureStatus: 429}),
	})
	budgetedID, budgeted := e.newKey(`{"name":"budgeted"}`)
	e.assign("keys", budgetedID, e.guardrail(`{"name":"tiny","limit_usd":0.000000001,"reset_interval":"daily"}`))
	status, doc := call(t, e.srv.URL, "PATCH", "/v1/workspaces/"+e.ws, e.key, `{"default_guardrail_id":"`+e.guardrail(`{"name":"default"}`)+`"}`)
	require.Equal(t, 200, status, "%v", doc)
	narrowedID, narrowed := e.newKey(`{"name":"narrowed"}`)
	e.assign("keys", narrowedID, e.guardrail(`{"name":"test only","allowed_models":["test/*"]}`))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "compat.mjs"), e.srv.URL, e.key, budgeted, narrowed)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node compat.mjs:\n%s", out)
	require.Equal(t, "ok", strings.TrimSpace(string(out)))
}
