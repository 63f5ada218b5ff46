package providers

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/egress"
	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// toLoopback resolves every name to 127.0.0.1: a public-looking name that
// rebinds to loopback, without any test reaching real DNS.
type toLoopback struct{}

func (toLoopback) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// countingUpstream is a mock upstream on loopback that counts requests.
func countingUpstream(t *testing.T) (port string, hits *atomic.Int32) {
	t.Helper()
	hits = &atomic.Int32{}
	inner := mockupstream.New(mockupstream.Config{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	return u.Port(), hits
}

func guardedAdapter(p egress.Policy) *OpenAI {
	trusted := NewHTTPClient()
	d := &egress.Dialer{Policy: p, Resolver: toLoopback{}}
	return NewOpenAI(trusted, NewGuardedClient(trusted, d.DialContext))
}

func TestUntrustedCallsAreGuarded(t *testing.T) {
	t.Parallel()
	port, hits := countingUpstream(t)
	call := Call{Provider: "p", BaseURL: "http://api.example.com:" + port + "/v1", UpstreamModel: "echo", Untrusted: true,
		Body: []byte(`{"messages":[{"role":"user","content":"x"}]}`)}

	_, err := guardedAdapter(egress.Policy{}).Complete(context.Background(), call)
	requireUpstreamError(t, err, 0, apierr.ProviderError, true)
	msg := apierr.From(err).Message
	require.Contains(t, msg, "base_url resolves to an address workspaces may not reach")
	require.Contains(t, msg, "PERPETUO_EGRESS_ALLOW")
	require.NotContains(t, msg, "127.0.0.1")
	require.NotContains(t, msg, "api.example.com")
	_, err = guardedAdapter(egress.Policy{}).Stream(context.Background(), call)
	requireUpstreamError(t, err, 0, apierr.ProviderError, true)
	require.Zero(t, hits.Load(), "the guard refuses before connecting")

	allowed, err := egress.ParseAllow("127.0.0.0/8")
	require.NoError(t, err)
	comp, err := guardedAdapter(allowed).Complete(context.Background(), call)
	require.NoError(t, err, "the operator's allowlist opens it")
	require.Equal(t, "stop", comp.FinishReason)
	require.Equal(t, int32(1), hits.Load())
}

func TestUntrustedCallsWithoutAGuardFail(t *testing.T) {
	t.Parallel()
	port, hits := countingUpstream(t)
	_, err := NewOpenAI(NewHTTPClient(), nil).Complete(context.Background(),
		Call{Provider: "p", BaseURL: "http://127.0.0.1:" + port + "/v1", Untrusted: true, Body: []byte(`{}`)})
	requireUpstreamError(t, err, 0, apierr.ProviderError, true)
	require.Zero(t, hits.Load())
}

func TestGuardedClientHasNoBypass(t *testing.T) {
	t.Parallel()
	trusted := NewHTTPClient()
	BaseTransport(trusted).DialTLSContext = func(context.Context, string, string) (net.Conn, error) {
		return nil, nil
	}
	g := NewGuardedClient(trusted, (&egress.Dialer{}).DialContext)
	tr := BaseTransport(g)
	require.Nil(t, tr.Proxy, "a proxy would connect past the guard")
	require.Nil(t, tr.DialTLSContext, "it would replace the guarded dial for https")
	require.NotNil(t, tr.DialContext)
	require.NotSame(t, trusted.Transport, g.Transport, "separate pools")
	require.Equal(t, http.ErrUseLastResponse, g.CheckRedirect(nil, nil), "redirects are never followed")
	require.Equal(t, BaseTransport(trusted).MaxIdleConnsPerHost, tr.MaxIdleConnsPerHost)
}

func TestEndpointURLJoinsPaths(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"https://h/v1/":                     "https://h/v1/chat/completions",
		"https://h/v1":                      "https://h/v1/chat/completions",
		"https://h/v1//":                    "https://h/v1/chat/completions",
		"https://h":                         "https://h/chat/completions",
		"http://127.0.0.1:9/":               "http://127.0.0.1:9/chat/completions",
		"https://h/openai/v1?api-version=1": "https://h/openai/v1/chat/completions?api-version=1",
		"https://h/v1#frag":                 "https://h/v1/chat/completions",
	}
	for range 2 { // the second time from the memo
		for base, want := range cases {
			got, err := endpointURL(base, "/chat/completions")
			require.NoError(t, err, base)
			require.Equal(t, want, got, base)
		}
		for _, bad := range []string{"", "/v1", "ftp://h/v1", "h/v1"} {
			_, err := endpointURL(bad, "/chat/completions")
			require.Error(t, err, bad)
		}
	}
}

// TestEndpointMemoIsBounded: however many bases and paths come, the memo
// holds at most maxEndpoints answers.
func TestEndpointMemoIsBounded(t *testing.T) {
	for i := range 3 * maxEndpoints {
		got, err := endpointURL("https://h/v1", "/models/m"+strconv.Itoa(i))
		require.NoError(t, err)
		require.Equal(t, "https://h/v1/models/m"+strconv.Itoa(i), got)
	}
	endpoints.RLock()
	defer endpoints.RUnlock()
	require.LessOrEqual(t, len(endpoints.m), maxEndpoints)
	require.NotEmpty(t, endpoints.m)
}
