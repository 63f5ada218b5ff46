package app

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenRouterManagementRules: the OpenRouter-shaped routes keep the
// rules of the workspace-scoped ones they share services with (roles,
// tenancy), bulk assignment changes nothing when one id is wrong, and what
// Perpetuo does not offer answers 501 not_supported naming the feature.
func TestOpenRouterManagementRules(t *testing.T) {
	t.Parallel()
	f := newRBACFix(t)
	e := f.e
	member, owner := f.main.keys[rMember], f.main.keys[rOwner]

	// Keys: a member lists its own; another workspace is not found.
	status, doc := call(t, e.srv.URL, "GET", "/api/v1/keys", member, "")
	require.Equal(t, 200, status, "%v", doc)
	require.Len(t, doc["data"], 1)
	require.Equal(t, f.main.keyIDs[rMember], doc["data"].([]any)[0].(map[string]any)["hash"])
	status, doc = call(t, e.srv.URL, "GET", "/api/v1/keys?workspace_id="+f.other.id, owner, "")
	requireEnvelope(t, doc, 404, "not_found")
	require.Equal(t, 404, status)
	status, doc = call(t, e.srv.URL, "GET", "/api/v1/keys/"+f.oKey, owner, "")
	require.Equal(t, 404, status, "another workspace's key: %v", doc)
	status, doc = call(t, e.srv.URL, "PATCH", "/api/v1/keys/"+f.main.keyIDs[rAdmin], member, `{"name":"mine now"}`)
	require.Equal(t, 403, status, "a member renames only its own keys: %v", doc)
	status, doc = call(t, e.srv.URL, "PATCH", "/api/v1/keys/"+f.main.keyIDs[rMember], member, `{"limit":1}`)
	require.Equal(t, 403, status, "a member cannot set its own limit: %v", doc)

	// Disabled keys are listed only when asked.
	status, doc = call(t, e.srv.URL, "PATCH", "/api/v1/keys/"+f.tKey, owner, `{"disabled":true}`)
	require.Equal(t, 200, status, "%v", doc)
	_, doc = call(t, e.srv.URL, "GET", "/api/v1/keys", owner, "")
	all := len(doc["data"].([]any))
	_, doc = call(t, e.srv.URL, "GET", "/api/v1/keys?include_disabled=true", owner, "")
	require.Equal(t, all+1, len(doc["data"].([]any)))

	// Guardrails: members may not manage them.
	status, doc = call(t, e.srv.URL, "POST", "/api/v1/guardrails", member, `{"name":"nope"}`)
	requireEnvelope(t, doc, 403, "permission_denied")
	require.Equal(t, 403, status)
	gr := e.guardrail(`{"name":"bulk","allowed_models":["mock/*"]}`)
	status, doc = call(t, e.srv.URL, "POST", "/api/v1/guardrails/"+gr+"/assignments/keys", member,
		`{"key_hashes":["`+f.main.keyIDs[rMember]+`"]}`)
	require.Equal(t, 403, status, "%v", doc)

	// One unknown key: 404 naming it, and no key assigned.
	status, doc = call(t, e.srv.URL, "POST", "/api/v1/guardrails/"+gr+"/assignments/keys", owner,
		`{"key_hashes":["`+f.main.keyIDs[rMember]+`","`+f.oKey+`"]}`)
	er := requireEnvelope(t, doc, 404, "not_found")
	require.Equal(t, 404, status)
	require.Contains(t, er["message"], f.oKey)
	_, doc = call(t, e.srv.URL, "GET", "/api/v1/guardrails/"+gr, owner, "")
	require.Empty(t, data(doc)["key_ids"], "nothing was assigned")

	status, doc = call(t, e.srv.URL, "POST", "/api/v1/guardrails/"+gr+"/assignments/keys", owner,
		`{"key_hashes":["`+f.main.keyIDs[rMember]+`","`+f.main.keyIDs[rViewer]+`"]}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, 2.0, doc["assigned_count"])
	// The assignment governs the very next request.
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", member, `{"model":"test/trio","messages":[{"role":"user","content":"x"}]}`)
	requireEnvelope(t, doc, 403, "model_not_allowed")
	require.Equal(t, 403, status)
	status, doc = call(t, e.srv.URL, "POST", "/api/v1/guardrails/"+gr+"/assignments/keys/remove", owner,
		`{"key_hashes":["`+f.main.keyIDs[rMember]+`","`+f.main.keyIDs[rAdmin]+`"]}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, 1.0, doc["unassigned_count"], "the admin's key was not governed by it")
	_, doc = call(t, e.srv.URL, "GET", "/api/v1/guardrails/"+gr, owner, "")
	require.Equal(t, []any{f.main.keyIDs[rViewer]}, data(doc)["key_ids"])

	// PATCH keeps what it leaves out and clears what it nulls.
	status, doc = call(t, e.srv.URL, "PATCH", "/api/v1/guardrails/"+gr, owner, `{"limit_usd":3,"reset_interval":"daily"}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, []any{"mock/*"}, data(doc)["allowed_models"])
	require.Equal(t, 3.0, data(doc)["limit_usd"])
	status, doc = call(t, e.srv.URL, "PATCH", "/api/v1/guardrails/"+gr, owner, `{"allowed_models":null}`)
	require.Equal(t, 200, status, "%v", doc)
	require.Empty(t, data(doc)["allowed_models"])
	require.Equal(t, 3.0, data(doc)["limit_usd"])
	status, doc = call(t, e.srv.URL, "PATCH", "/api/v1/guardrails/"+gr, owner, `{"content_filters":[]}`)
	er = requireEnvelope(t, doc, 400, "invalid_request")
	require.Equal(t, 400, status)
	require.Contains(t, er["message"], "content_filters")

	// Paging: total_count counts every guardrail.
	e.guardrail(`{"name":"second"}`)
	status, doc = call(t, e.srv.URL, "GET", "/api/v1/guardrails?limit=1&offset=1", owner, "")
	require.Equal(t, 200, status, "%v", doc)
	require.Len(t, doc["data"], 1)
	require.Equal(t, 2.0, doc["total_count"])

	// Deleting an assigned guardrail unassigns it.
	status, doc = call(t, e.srv.URL, "DELETE", "/api/v1/guardrails/"+gr, owner, "")
	require.Equal(t, 200, status, "%v", doc)
	require.Equal(t, true, doc["deleted"])
	status, doc = call(t, e.srv.URL, "GET", "/api/v1/keys/"+f.main.keyIDs[rViewer], owner, "")
	require.Equal(t, 200, status, "%v", doc)
	require.Nil(t, data(doc)["guardrail_id"])

	// Not offered: typed, naming the feature, before any body is read.
	for _, c := range []struct{ method, path, key, feature string }{
		{"GET", "/api/v1/credits", owner, "credits"},
		{"POST", "/api/v1/credits/coinbase", owner, "credits"},
		{"POST", "/api/v1/auth/keys", "", "oauth"},
		{"GET", "/api/v1/guardrails/" + gr + "/assignments/keys", owner, "guardrail_assignment_listing"},
		{"POST", "/api/v1/workspaces/" + e.ws + "/members/add", owner, "organization_users"},
		{"POST", "/api/v1/workspaces/" + e.ws + "/members/remove", owner, "organization_users"},
	} {
		status, doc = call(t, e.srv.URL, c.method, c.path, c.key, "")
		er := requireEnvelope(t, doc, http.StatusNotImplemented, "not_supported")
		require.Equal(t, http.StatusNotImplemented, status, c.path)
		require.Equal(t, c.feature, er["metadata"].(map[string]any)["feature"], c.path)
	}
}
