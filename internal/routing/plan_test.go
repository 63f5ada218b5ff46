package routing

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/catalog"
)

const doc = `{
 "providers": [
  {"slug":"cheap","name":"Cheap","api":"openai","data_policy":{"zdr":false,"trains_on_data":true}},
  {"slug":"private","name":"Private","api":"openai","data_policy":{"zdr":true,"trains_on_data":false}},
  {"slug":"pricey","name":"Pricey","api":"openai","data_policy":{"zdr":true,"trains_on_data":false}},
  {"slug":"claude","name":"Claude","api":"anthropic","data_policy":{"zdr":true,"trains_on_data":false}}
 ],
 "models": [
  {"id":"a/m","name":"M","context_length":100,"endpoints":[
    {"provider":"pricey","upstream_model":"m3","pricing":{"prompt":"3","completion":"3"},"context_length":100},
    {"provider":"cheap","upstream_model":"m1","pricing":{"prompt":"1","completion":"1"},"context_length":100},
    {"provider":"private","upstream_model":"m2","pricing":{"prompt":"2","completion":"2"},"context_length":100},
    {"provider":"claude","upstream_model":"m4","pricing":{"prompt":"0","completion":"0"},"context_length":100}]},
  {"id":"a/n","name":"N","context_length":100,"endpoints":[
    {"provider":"cheap","upstream_model":"n1","pricing":{"prompt":"1","completion":"1"},"context_length":100}]}
 ]}`

// static is the same credential set for every workspace.
type static Set

func (s static) For(context.Context, string) (Set, error) { return Set(s), nil }

func planner(t *testing.T, creds ...string) *Planner {
	t.Helper()
	c, err := catalog.Parse([]byte(doc))
	require.NoError(t, err)
	set := static{}
	for _, p := range creds {
		set[p] = Credential{Provider: p}
	}
	return &Planner{Catalog: c, Credentials: set, Families: func(api string) bool { return api == "openai" }}
}

func planned(p Plan) []string {
	var out []string
	for _, c := range p.Candidates {
		out = append(out, c.Model.ID+"@"+c.Provider.Slug)
	}
	return out
}

func TestPlan(t *testing.T) {
	t.Parallel()
	all := []string{"cheap", "private", "pricey", "claude"}
	no := false
	cases := []struct {
		name   string
		creds  []string
		models []string
		prefs  Prefs
		want   []string
	}{
		{"cheapest first, no adapter for claude", all, []string{"a/m"}, Prefs{}, []string{"a/m@cheap", "a/m@private", "a/m@pricey"}},
		{"order first, rest by price", all, []string{"a/m"}, Prefs{Order: []string{"pricey"}}, []string{"a/m@pricey", "a/m@cheap", "a/m@private"}},
		{"only", all, []string{"a/m"}, Prefs{Only: []string{"private", "pricey"}}, []string{"a/m@private", "a/m@pricey"}},
		{"ignore", all, []string{"a/m"}, Prefs{Ignore: []string{"cheap"}}, []string{"a/m@private", "a/m@pricey"}},
		{"zdr", all, []string{"a/m"}, Prefs{ZDR: true}, []string{"a/m@private", "a/m@pricey"}},
		{"no training", all, []string{"a/m"}, Prefs{DataCollection: "deny"}, []string{"a/m@private", "a/m@pricey"}},
		{"only credentialed", []string{"pricey"}, []string{"a/m"}, Prefs{}, []string{"a/m@pricey"}},
		{"models chain in order", all, []string{"a/n", "a/m"}, Prefs{}, []string{"a/n@cheap", "a/m@cheap", "a/m@private", "a/m@pricey"}},
		{"no fallbacks", all, []string{"a/m"}, Prefs{AllowFallbacks: &no}, []string{"a/m@cheap"}},
		{":floor sorts by price", all, []string{"a/m:floor"}, Prefs{}, []string{"a/m@cheap", "a/m@private", "a/m@pricey"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := planner(t, tc.creds...).Plan(context.Background(), "ws", tc.models, Facts{Strategy: Cheapest, Prefs: tc.prefs})
			require.NoError(t, err)
			require.Equal(t, tc.want, planned(p))
		})
	}
}

func TestPlanExplainsEmptyPlans(t *testing.T) {
	t.Parallel()
	all := []string{"cheap", "private", "pricey", "claude"}
	cases := []struct {
		name     string
		creds    []string
		models   []string
		prefs    Prefs
		typ      apierr.Type
		excluded []string
	}{
		{"unknown model", all, []string{"x/y"}, Prefs{}, apierr.NotFound, nil},
		{"privacy only", all, []string{"a/n"}, Prefs{ZDR: true}, apierr.PrivacyRestricted, []string{ReasonZDR}},
		{"training only", all, []string{"a/n"}, Prefs{DataCollection: "deny"}, apierr.PrivacyRestricted, []string{ReasonDataCollection}},
		{"no credentials", nil, []string{"a/n"}, Prefs{}, apierr.NoEndpoints, []string{ReasonCredentials}},
		{"mixed reasons", []string{"cheap", "claude"}, []string{"a/m"}, Prefs{ZDR: true},
			apierr.NoEndpoints, []string{ReasonZDR, ReasonCredentials, ReasonAdapter}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := planner(t, tc.creds...).Plan(context.Background(), "ws", tc.models, Facts{Prefs: tc.prefs})
			var e *apierr.Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.Equal(t, tc.typ, e.Type)
			require.Equal(t, 404, e.Status)
			if tc.excluded != nil {
				require.ElementsMatch(t, tc.excluded, e.Metadata["excluded_by"])
			}
		})
	}
}

func TestRoutable(t *testing.T) {
	t.Parallel()
	ms, err := planner(t, "private").Routable(context.Background(), "ws", false)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.Equal(t, "a/m", ms[0].Model.ID)
	require.Equal(t, "private", ms[0].Endpoint.Provider)
}
