package policy

import (
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/routing"
)

func TestForKey(t *testing.T) {
	t.Parallel()
	require.Equal(t, Policy{}, ForKey(keys.Key{ID: "key_1"}), "no limit, no ZDR: nothing governs it")

	k := keys.Key{ID: "key_1", Label: "pk_a…z", RequireZDR: true, LimitReset: "daily", IncludeBYOKInLimit: true}
	k.Limit.Decimal, k.Limit.Valid = decimal.RequireFromString("2.5"), true
	p := ForKey(k)
	require.Len(t, p.Budgets, 1)
	s := p.Budgets[0]
	require.Equal(t, "key", s.Kind)
	require.Equal(t, "key_1", s.ID)
	require.Equal(t, "pk_a…z", s.Name)
	require.Equal(t, "2.5", s.Limit.String())
	require.Equal(t, "daily", s.Reset)
	require.True(t, s.CountsBYOK)
	require.True(t, p.ZDR)
	require.Equal(t, []string{"key"}, p.ZDRBy)
}

func TestPrefsKeepTheRequirement(t *testing.T) {
	t.Parallel()
	require.True(t, Policy{ZDR: true}.Prefs(routing.Prefs{}).ZDR, "the key's requirement holds")
	require.True(t, Policy{}.Prefs(routing.Prefs{ZDR: true}).ZDR, "the request may ask for more")
	require.False(t, Policy{}.Prefs(routing.Prefs{}).ZDR)
	only := []string{"a"}
	require.Equal(t, only, Policy{ZDR: true}.Prefs(routing.Prefs{Only: only}).Only, "the rest is untouched")
}

func TestScopesForBYOK(t *testing.T) {
	t.Parallel()
	p := ForKey(keys.Key{ID: "k"})
	p.Budgets = append(p.Budgets, budgetScope("counts", true), budgetScope("ignores", false))
	byok := routing.Candidate{Credential: routing.Credential{BYOK: true}}
	operator := routing.Candidate{}
	names := func(plan routing.Plan) []string {
		var out []string
		for _, s := range p.ScopesFor(plan) {
			out = append(out, s.ID)
		}
		return out
	}
	require.Equal(t, []string{"counts", "ignores"}, names(routing.Plan{Candidates: []routing.Candidate{byok, operator}}),
		"an operator endpoint may serve: every budget is at stake")
	require.Equal(t, []string{"counts"}, names(routing.Plan{Candidates: []routing.Candidate{byok, byok}}),
		"only the workspace's own keys: budgets that ignore BYOK spend are not")
}

func budgetScope(id string, byok bool) budget.Scope {
	return budget.Scope{Kind: "key", ID: id, Limit: decimal.NewFromInt(1), CountsBYOK: byok}
}

func lim(s string) decimal.NullDecimal {
	return decimal.NullDecimal{Decimal: decimal.RequireFromString(s), Valid: true}
}

// The combination rules as a table: which guardrails govern, which budgets
// are checked, which models and providers pass, and who required ZDR.
func TestResolveCombination(t *testing.T) {
	t.Parallel()
	gs := map[string]guardrails.Guardrail{
		"gr_key": {ID: "gr_key", Input: guardrails.Input{Name: "keyg", Limit: lim("5"), Reset: "daily",
			AllowedModels: []string{"openai/*", "anthropic/claude"}, AllowedProviders: []string{"openai", "azure"}, IncludeBYOK: true}},
		"gr_mem": {ID: "gr_mem", Input: guardrails.Input{Name: "memberg", Limit: lim("50"),
			AllowedModels: []string{"openai/gpt-4o"}, AllowedProviders: []string{"azure", "groq"}, IgnoredProviders: []string{"groq"}, EnforceZDR: true}},
		"gr_def": {ID: "gr_def", Input: guardrails.Input{Name: "defaultg", IgnoredModels: []string{"openai/gpt-4o-mini"}, IgnoredProviders: []string{"together"}}},
	}
	ws := Workspace{ID: "ws_1", Name: "acme", DefaultGuardrailID: "gr_def"}
	key := keys.Key{ID: "key_1", Label: "pk_k", Limit: lim("1")}
	type want struct {
		governing []string // id:via
		budgets   []string // kind:id
		allowed   []string // of openai/gpt-4o, openai/gpt-4o-mini, anthropic/claude, meta/llama
		providers []string // of openai, azure, groq, together
		zdrBy     []string
	}
	all := []string{"openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude", "meta/llama"}
	everyProvider := []string{"openai", "azure", "groq", "together"}
	cases := []struct {
		name string
		key  keys.Key
		ws   Workspace
		want want
	}{
		{"no guardrail anywhere", keys.Key{ID: "key_1"}, Workspace{ID: "ws_1"},
			want{allowed: all, providers: everyProvider}},
		{"key limit only", key, Workspace{ID: "ws_1"},
			want{budgets: []string{"key:key_1"}, allowed: all, providers: everyProvider}},
		{"default governs a member without one", key, ws,
			want{governing: []string{"gr_def:default"}, budgets: []string{"key:key_1"},
				allowed: []string{"openai/gpt-4o", "anthropic/claude", "meta/llama"}, providers: []string{"openai", "azure", "groq"}}},
		{"the member's own replaces the default", withGuardrails(key, "", "gr_mem"), ws,
			want{governing: []string{"gr_mem:member"}, budgets: []string{"key:key_1", "guardrail:gr_mem"},
				allowed: []string{"openai/gpt-4o"}, providers: []string{"azure"}, zdrBy: []string{"guardrail:memberg"}}},
		{"key's and default: lists intersect and unite", withGuardrails(key, "gr_key", ""), ws,
			want{governing: []string{"gr_key:key", "gr_def:default"}, budgets: []string{"key:key_1", "guardrail:gr_key"},
				allowed: []string{"openai/gpt-4o", "anthropic/claude"}, providers: []string{"openai", "azure"}}},
		{"key's and member's: allowlists intersect, ZDR ors, every budget", withGuardrails(key, "gr_key", "gr_mem"), ws,
			want{governing: []string{"gr_key:key", "gr_mem:member"}, budgets: []string{"key:key_1", "guardrail:gr_key", "guardrail:gr_mem"},
				allowed: []string{"openai/gpt-4o"}, providers: []string{"azure"}, zdrBy: []string{"guardrail:memberg"}}},
		{"the same guardrail twice governs once", withGuardrails(keys.Key{ID: "key_1", RequireZDR: true}, "gr_mem", "gr_mem"), Workspace{ID: "ws_1"},
			want{governing: []string{"gr_mem:key"}, budgets: []string{"guardrail:gr_mem"},
				allowed: []string{"openai/gpt-4o"}, providers: []string{"azure"}, zdrBy: []string{"key", "guardrail:memberg"}}},
		{"the workspace budget", key, Workspace{ID: "ws_1", Name: "acme", Limit: lim("100"), Reset: "monthly"},
			want{budgets: []string{"key:key_1", "workspace:ws_1"}, allowed: all, providers: everyProvider}},
		{"a guardrail that is gone governs nothing", withGuardrails(key, "gr_gone", ""), Workspace{ID: "ws_1"},
			want{budgets: []string{"key:key_1"}, allowed: all, providers: everyProvider}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Resolve(Inputs{Key: tc.key, Workspace: tc.ws, Guardrails: gs})
			var got want
			for _, g := range p.Guardrails {
				got.governing = append(got.governing, g.ID+":"+g.Via)
			}
			for _, b := range p.Budgets {
				got.budgets = append(got.budgets, b.Kind+":"+b.ID)
			}
			for _, m := range all {
				if _, ok := p.ModelAllowed(m); ok {
					got.allowed = append(got.allowed, m)
				}
			}
			f := p.Filter()
			for _, slug := range everyProvider {
				c := routing.Candidate{Provider: &catalog.Provider{Slug: slug}}
				if f == nil || f.Exclude(&c) == "" {
					got.providers = append(got.providers, slug)
				}
			}
			got.zdrBy = p.ZDRBy
			require.Equal(t, tc.want, got)
			require.Equal(t, len(got.zdrBy) > 0, p.ZDR)
		})
	}
	// Each budget keeps its own limit, period and BYOK rule.
	p := Resolve(Inputs{Key: withGuardrails(key, "gr_key", ""), Workspace: Workspace{ID: "ws_1", Limit: lim("100"), Reset: "monthly"}, Guardrails: gs})
	require.Equal(t, []budget.Scope{
		{Kind: "key", ID: "key_1", Name: "pk_k", Limit: decimal.RequireFromString("1")},
		{Kind: "guardrail", ID: "gr_key", Name: "keyg", Limit: decimal.RequireFromString("5"), Reset: "daily", CountsBYOK: true},
		{Kind: "workspace", ID: "ws_1", Limit: decimal.RequireFromString("100"), Reset: "monthly", CountsBYOK: true},
	}, p.Budgets)
}

func withGuardrails(k keys.Key, own, member string) keys.Key {
	k.GuardrailID, k.MemberGuardrailID = own, member
	return k
}

// TestCheckModels: a chain keeps its allowed models in order; when none is
// left the refusal names the first guardrail that refused and what it allows.
func TestCheckModels(t *testing.T) {
	t.Parallel()
	g := guardrails.Guardrail{ID: "gr_1", Input: guardrails.Input{Name: "team", AllowedModels: []string{"openai/*"}}}
	p := Policy{Guardrails: []Governing{{Guardrail: g, Via: "key"}}}
	kept, err := p.CheckModels([]string{"meta/llama", "openai/gpt-4o:nitro", "openai/gpt-4o"})
	require.NoError(t, err)
	require.Equal(t, []string{"openai/gpt-4o:nitro", "openai/gpt-4o"}, kept, "a variant is its model's")
	_, err = p.CheckModels([]string{"meta/llama"})
	e := apierr.From(err)
	require.Equal(t, 403, e.Status)
	require.Equal(t, apierr.ModelNotAllowed, e.Type)
	require.Equal(t, "gr_1", e.Metadata["guardrail_id"])
	require.Equal(t, "team", e.Metadata["guardrail_name"])
	require.Equal(t, []string{"openai/*"}, e.Metadata["allowed_models"])
	require.Contains(t, e.Message, "openai/*")
	require.Contains(t, e.Message, "The model meta/llama is not allowed by guardrail team")
	kept, err = Policy{}.CheckModels([]string{"meta/llama"})
	require.NoError(t, err)
	require.Equal(t, []string{"meta/llama"}, kept, "no guardrail: anything the catalog has")
}
