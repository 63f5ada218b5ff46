package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// guardedTarget makes, through the management API, a key with a limit for
// a member, gives the key and the member each a guardrail with a budget,
// and returns the gateway target calling with that key: every request then
// counts toward three budgets. Limits are far above what the run spends.
func guardedTarget(ctx context.Context, gw target) (target, error) {
	base := strings.TrimSuffix(gw.url, "/v1/chat/completions")
	api := func(method, path, body string) (map[string]any, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+gw.token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, clip(raw))
		}
		var doc struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		var obj map[string]any
		_ = json.Unmarshal(doc.Data, &obj) // a list leaves it nil
		return obj, nil
	}
	me, err := api("GET", "/v1/key", "")
	if err != nil {
		return target{}, err
	}
	ws := "/v1/workspaces/" + me["workspace_id"].(string)
	member, err := api("POST", ws+"/members", `{"name":"bench member","role":"member"}`)
	if err != nil {
		return target{}, err
	}
	guarded, err := api("POST", ws+"/keys", `{"name":"bench guarded","limit":1000000,"member_id":"`+member["id"].(string)+`"}`)
	if err != nil {
		return target{}, err
	}
	for i, assign := range []string{"/keys/" + guarded["id"].(string), "/members/" + member["id"].(string)} {
		g, err := api("POST", ws+"/guardrails", fmt.Sprintf(`{"name":"bench %d","limit_usd":1000000,"reset_interval":"monthly"}`, i))
		if err != nil {
			return target{}, err
		}
		if _, err := api("POST", ws+assign+"/guardrail", `{"guardrail_id":"`+g["id"].(string)+`"}`); err != nil {
			return target{}, err
		}
	}
	t := gw
	t.name, t.token = "perpetuo, limits", guarded["key"].(string)
	return t, nil
}

// postgresCPU is the user + system CPU time of every process named
// postgres on this machine (the managed cluster's), or 0 when /proc
// cannot tell, including the processes that have exited (autovacuum
// workers come and go): their time is in the postmaster's children's
// counters once it has reaped them.
func postgresCPU() time.Duration {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, p := range stats {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if open < 0 || end < open || string(raw[open+1:end]) != "postgres" {
			continue
		}
		self, children := statTimes(raw)
		total += self + children
	}
	return total
}
