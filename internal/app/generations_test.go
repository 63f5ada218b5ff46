package app

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// listGenerations pages through GET /v1/workspaces/{ws}/generations with
// query q and returns every id, newest first, and the pages' sizes.
func listGenerations(t *testing.T, e *env, key string, q url.Values) ([]string, []int) {
	t.Helper()
	var ids []string
	var sizes []int
	for range 50 {
		status, doc := call(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/generations?"+q.Encode(), key, "")
		require.Equal(t, http.StatusOK, status, "%v", doc)
		items := doc["data"].([]any)
		sizes = append(sizes, len(items))
		for _, it := range items {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		next, _ := doc["next_cursor"].(string)
		if next == "" {
			return ids, sizes
		}
		q.Set("cursor", next)
	}
	t.Fatal("more pages than expected")
	return nil, nil
}

func TestListGenerationsFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	// A member with its own key.
	status, doc := call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/members", e.key, `{"name":"m","role":"member"}`)
	require.Equal(t, http.StatusCreated, status, "%v", doc)
	memberID := data(doc)["id"].(string)
	status, doc = call(t, e.srv.URL, "POST", "/v1/workspaces/"+e.ws+"/keys", e.key, `{"name":"mk","member_id":"`+memberID+`"}`)
	require.Equal(t, http.StatusCreated, status, "%v", doc)
	memberKeyID, memberKey := data(doc)["id"].(string), data(doc)["key"].(string)

	send := func(key, body string) string {
		_, hdr, _ := send(t, e.srv.URL, "POST", "/v1/chat/completions", key, body)
		return hdr.Get("X-Generation-Id")
	}
	var all []string // newest last
	for range 4 {
		all = append(all, send(e.key, `{"model":"mock/echo","messages":[{"role":"user","content":"hi"}]}`))
	}
	for range 3 {
		all = append(all, send(e.key, `{"model":"test/trio","strategy":"cheapest","messages":[{"role":"user","content":"hi"}]}`))
	}
	all = append(all, send(e.key, `{"model":"test/trio","provider":{"only":["nobody"]},"messages":[{"role":"user","content":"hi"}]}`)) // 404 no_endpoints, recorded
	mine := send(memberKey, `{"model":"mock/echo","messages":[{"role":"user","content":"member"}]}`)
	all = append(all, mine)
	require.NoError(t, e.app.Recorder.Flush(context.Background()))

	ids, sizes := listGenerations(t, e, e.key, url.Values{"limit": {"3"}})
	var withIDs []string
	for _, id := range all {
		if id != "" {
			withIDs = append(withIDs, id)
		}
	}
	require.Len(t, ids, len(all), "every record, the no_endpoints one included")
	require.Equal(t, []int{3, 3, 3}, sizes)
	seen := map[string]bool{}
	for _, id := range ids {
		require.False(t, seen[id], "no record twice across pages")
		seen[id] = true
	}
	for _, id := range withIDs {
		require.True(t, seen[id], id)
	}
	require.Equal(t, mine, ids[0], "newest first")

	count := func(key string, q url.Values) int {
		ids, _ := listGenerations(t, e, key, q)
		return len(ids)
	}
	require.Equal(t, 4, count(e.key, url.Values{"model": {"test/trio"}}))
	require.Equal(t, 3, count(e.key, url.Values{"provider": {"tri-a"}}))
	require.Equal(t, 1, count(e.key, url.Values{"status": {"404"}}))
	require.Equal(t, 1, count(e.key, url.Values{"key_id": {memberKeyID}}))
	require.Equal(t, 0, count(e.key, url.Values{"to": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}}))
	require.Equal(t, 9, count(e.key, url.Values{"from": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}}))

	// A member sees only its own keys' generations.
	memberIDs, _ := listGenerations(t, e, memberKey, url.Values{})
	require.Equal(t, []string{mine}, memberIDs)

	// The no_endpoints record explains itself.
	status, doc = call(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/generations?status=404", e.key, "")
	require.Equal(t, http.StatusOK, status)
	g := doc["data"].([]any)[0].(map[string]any)
	routing := g["routing"].(map[string]any)
	for _, c := range routing["candidates"].([]any) {
		require.Equal(t, "provider:only", c.(map[string]any)["excluded_by"])
	}

	// Bad cursors and other workspaces are refused clearly.
	status, doc = call(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/generations?cursor=bm9wZQ", e.key, "")
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "cursor", requireEnvelope(t, doc, 400, "invalid_request")["metadata"].(map[string]any)["field"])
	status, _ = call(t, e.srv.URL, "GET", "/v1/workspaces/ws_other/generations", e.key, "")
	require.Equal(t, http.StatusNotFound, status)
	status, doc = call(t, e.srv.URL, "GET", "/v1/workspaces/"+e.ws+"/generations?limit=500", e.key, "")
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "limit", requireEnvelope(t, doc, 400, "invalid_request")["metadata"].(map[string]any)["field"])
}
