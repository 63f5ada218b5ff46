package guardrails

import (
	"context"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/keys"
)

func testCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Parse([]byte(`{"providers":[{"slug":"openai","name":"OpenAI","api":"openai"},{"slug":"groq","name":"Groq","api":"openai"}],
	 "models":[{"id":"openai/gpt-4o","name":"GPT-4o","context_length":1000,"endpoints":[{"provider":"openai","upstream_model":"gpt-4o","pricing":{"prompt":"0","completion":"0"},"context_length":1000}]},
	           {"id":"meta/llama","name":"Llama","context_length":1000,"endpoints":[{"provider":"groq","upstream_model":"llama","pricing":{"prompt":"0","completion":"0"},"context_length":1000}]}]}`))
	require.NoError(t, err)
	return c
}

// TestCheck: what may be stored, each refusal naming the field by its JSON
// pointer and never echoing the value.
func TestCheck(t *testing.T) {
	t.Parallel()
	s := NewService(nil, testCatalog(t), nil)
	in, err := s.Check(Input{Name: " team ", AllowedModels: []string{"openai/*", "meta/llama", "openai/*"}, AllowedProviders: []string{"groq"}})
	require.NoError(t, err)
	require.Equal(t, "team", in.Name)
	require.Equal(t, []string{"openai/*", "meta/llama"}, in.AllowedModels)
	neg := decimal.NullDecimal{Decimal: decimal.NewFromInt(-1), Valid: true}
	for _, tc := range []struct {
		in    Input
		field string
	}{
		{Input{Name: ""}, "/name"},
		{Input{Name: "x", AllowedModels: []string{"openai/gpt-4o", "secret/model"}}, "/allowed_models/1"},
		{Input{Name: "x", IgnoredModels: []string{"secret/*"}}, "/ignored_models/0"},
		{Input{Name: "x", AllowedProviders: []string{"secret"}}, "/allowed_providers/0"},
		{Input{Name: "x", IgnoredProviders: []string{"groq", "secret"}}, "/ignored_providers/1"},
		{Input{Name: "x", Limit: neg}, "/limit_usd"},
		{Input{Name: "x", Reset: "daily"}, "/reset_interval"},
		{Input{Name: "x", Limit: decimal.NullDecimal{Valid: true}, Reset: "hourly"}, "/reset_interval"},
	} {
		_, err := s.Check(tc.in)
		e := apierr.From(err)
		require.Equal(t, 400, e.Status, "%+v", tc.in)
		require.Equal(t, tc.field, e.Metadata["field"], "%+v", tc.in)
		require.False(t, strings.Contains(e.Message, "secret"), "never echoes the value: %s", e.Message)
	}
}

// TestOnlyAdminsAndOwnersManage: the role check comes before anything is read.
func TestOnlyAdminsAndOwnersManage(t *testing.T) {
	t.Parallel()
	s := NewService(nil, testCatalog(t), nil)
	for _, role := range []string{"member", "viewer"} {
		caller := keys.Key{WorkspaceID: "ws_1", Role: role}
		_, err := s.Create(context.Background(), caller, Input{Name: "x"})
		require.Equal(t, apierr.PermissionDenied, apierr.From(err).Type, role)
		require.Equal(t, apierr.PermissionDenied, apierr.From(s.Delete(context.Background(), caller, "gr_1", true)).Type, role)
		require.Equal(t, apierr.PermissionDenied, apierr.From(s.AssignKey(context.Background(), caller, "key_1", "gr_1")).Type, role)
		require.Equal(t, apierr.PermissionDenied, apierr.From(s.CheckAssignable(context.Background(), caller, "/default_guardrail_id", "")).Type, role)
	}
}

func TestMatches(t *testing.T) {
	t.Parallel()
	require.True(t, Matches("openai/*", "openai/gpt-4o"))
	require.True(t, Matches("openai/gpt-4o", "openai/gpt-4o:nitro"), "a variant is its model's")
	require.True(t, Matches("*", "meta/llama"))
	require.False(t, Matches("openai/*", "openaix/gpt"))
	require.False(t, Matches("openai/gpt-4o", "openai/gpt-4o-mini"))
}
