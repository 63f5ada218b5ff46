package policy

import (
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/budget"
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
