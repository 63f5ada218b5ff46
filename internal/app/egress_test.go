package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/egress"
	"github.com/perpetuo/perpetuo/internal/mockupstream"
	"github.com/perpetuo/perpetuo/internal/providers"
)

// loopbackEgress lets workspace credentials reach 127.0.0.0/8, where every
// test's fake upstreams listen. Tests of the egress rules themselves use a
// policy without it.
var loopbackEgress = egress.Policy{Prefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

// rebinding resolves its names to loopback and knows no others: a public
// name whose DNS points inside, with nothing sent beyond 127.0.0.1.
type rebinding map[string]bool

func (r rebinding) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if !r[host] {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// loopbackOnly is the operator's client for a test that names public hosts:
// it connects to loopback literals only, so a broken guard fails the test
// instead of resolving or dialing anything real.
func loopbackOnly() *http.Client {
	c := providers.NewHTTPClient()
	var d net.Dialer
	providers.BaseTransport(c).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil || !ap.Addr().IsLoopback() {
			return nil, fmt.Errorf("test: refusing to dial %s beyond loopback", addr)
		}
		return d.DialContext(ctx, network, addr)
	}
	return c
}

func TestWorkspaceBaseURLsCannotReachInternalAddresses(t *testing.T) {
	t.Parallel()
	e := setupWith(t, nil, func(o *Options) {
		o.Egress, o.EgressResolver = egress.Policy{}, rebinding{"llm.example.com": true}
		o.HTTPClient = loopbackOnly()
	})
	ws := "/v1/workspaces/" + e.ws + "/credentials"
	for _, base := range []string{
		"http://127.0.0.1:1/v1", "http://169.254.169.254/", "http://2130706433/", "http://0x7f000001/",
		"http://[::ffff:127.0.0.1]/", "https://h.example.com/v1?x=1", "https://h.example.com/v1#f",
		"http://localhost:5432/", "http://metadata.google.internal/", "https://h.example.com/v1/../admin",
	} {
		t.Run(base, func(t *testing.T) {
			status, doc := call(t, e.srv.URL, "POST", ws, e.key, `{"provider":"flaky","api_key":"k","base_url":"`+base+`"}`)
			if status == 201 { // a regression: remove it before anything routes there
				call(t, e.srv.URL, "DELETE", ws+"/"+data(doc)["id"].(string), e.key, "")
			}
			require.Equal(t, 400, status, "%v", doc)
			er := requireEnvelope(t, doc, 400, "invalid_request")
			require.Equal(t, "/base_url", er["metadata"].(map[string]any)["field"])
			u, _ := url.Parse(base)
			require.NotContains(t, er["message"], u.Host, "the refusal names the rule, not the value")
		})
	}

	// A public-looking name is stored; its address is checked at each dial.
	var hits atomic.Int32
	inner := mockupstream.New(mockupstream.Config{APIKey: byokSecret})
	up, err := url.Parse(newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		inner.ServeHTTP(w, r)
	})))
	require.NoError(t, err)
	status, doc := call(t, e.srv.URL, "POST", ws, e.key,
		`{"provider":"flaky","api_key":"`+byokSecret+`","base_url":"http://llm.example.com:`+up.Port()+`/v1"}`)
	require.Equal(t, 201, status, "%v", doc)
	credID := data(doc)["id"].(string)

	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key,
		`{"model":"test/leaky","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 502, status, "%v", doc)
	er := requireEnvelope(t, doc, 502, "provider_error")
	require.Contains(t, er["message"], "base_url resolves to an address workspaces may not reach")
	require.Contains(t, er["message"], "PERPETUO_EGRESS_ALLOW")
	require.NotContains(t, er["message"], "127.0.0.1")
	require.NotContains(t, er["message"], "llm.example.com")
	require.Zero(t, hits.Load(), "the guard refuses before connecting")

	// Updates are checked like creations.
	status, doc = call(t, e.srv.URL, "PATCH", ws+"/"+credID, e.key, `{"base_url":"http://10.0.0.5/v1"}`)
	require.Equal(t, 400, status, "%v", doc)
	require.Equal(t, "/base_url", requireEnvelope(t, doc, 400, "invalid_request")["metadata"].(map[string]any)["field"])

	// The operator's providers, on 127.0.0.1 too, are not checked.
	status, doc = call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key, chatBody)
	require.Equal(t, 200, status, "%v", doc)
}
