package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeResolver answers every name from a fixed table; no test touches DNS.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	raw, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]netip.Addr, len(raw))
	for i, s := range raw {
		out[i] = netip.MustParseAddr(s)
	}
	return out, nil
}

// recordingDial records the addresses it is asked to dial and connects
// nowhere: it hands back one end of a pipe.
type recordingDial struct {
	mu   sync.Mutex
	seen []string
}

func (r *recordingDial) dial(_ context.Context, _, addr string) (net.Conn, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, addr)
	c1, c2 := net.Pipe()
	_ = c2.Close()
	return c1, nil
}

func (r *recordingDial) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// TestDialRefusesForbiddenResolutions is DNS rebinding: a public-looking
// name that resolves to an internal address is refused before any dial.
func TestDialRefusesForbiddenResolutions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		addrs []string
		rule  string
	}{
		{"private", []string{"10.0.0.5"}, "private"},
		{"metadata", []string{"169.254.169.254"}, "cloud metadata"},
		{"mapped loopback", []string{"::ffff:127.0.0.1"}, "loopback"},
		{"ipv6 loopback", []string{"::1"}, "loopback"},
		{"nat64 metadata", []string{"64:ff9b::a9fe:a9fe"}, "cloud metadata"},
		{"all internal", []string{"192.168.0.10", "fd00::1", "100.64.1.1"}, "private"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recordingDial{}
			d := &Dialer{Resolver: fakeResolver{"api.example.com": tc.addrs}, Dial: rec.dial}
			conn, err := d.DialContext(context.Background(), "tcp", "api.example.com:443")
			require.Nil(t, conn)
			var blocked *BlockedError
			require.True(t, errors.As(err, &blocked), "got %v", err)
			require.Equal(t, "api.example.com", blocked.Host)
			require.Contains(t, blocked.Refused[0], "("+tc.rule+")")
			require.Empty(t, rec.calls(), "a forbidden address must never be dialed")
		})
	}
}

func TestDialSkipsForbiddenAddressesOfAMixedAnswer(t *testing.T) {
	t.Parallel()
	rec := &recordingDial{}
	d := &Dialer{Resolver: fakeResolver{"api.example.com": {"127.0.0.1", "203.0.114.9", "10.0.0.1"}}, Dial: rec.dial}
	conn, err := d.DialContext(context.Background(), "tcp", "api.example.com:443")
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	require.Equal(t, []string{"203.0.114.9:443"}, rec.calls(), "only the public address is dialed, as a literal")
}

func TestDialRefusesForbiddenLiterals(t *testing.T) {
	t.Parallel()
	rec := &recordingDial{}
	d := &Dialer{Resolver: fakeResolver{}, Dial: rec.dial}
	for _, addr := range []string{"127.0.0.1:5432", "[::ffff:169.254.169.254]:80", "[::1]:80", "0.0.0.0:80"} {
		_, err := d.DialContext(context.Background(), "tcp", addr)
		var blocked *BlockedError
		require.True(t, errors.As(err, &blocked), "%s: got %v", addr, err)
	}
	require.Empty(t, rec.calls())
}

func TestDialAllowsWhatThePolicyAllows(t *testing.T) {
	t.Parallel()
	byHost, err := ParseAllow("vllm.internal")
	require.NoError(t, err)
	byRange, err := ParseAllow("127.0.0.0/8")
	require.NoError(t, err)
	for name, p := range map[string]Policy{"host": byHost, "range": byRange} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := &recordingDial{}
			d := &Dialer{Policy: p, Resolver: fakeResolver{"vllm.internal": {"127.0.0.1"}}, Dial: rec.dial}
			conn, err := d.DialContext(context.Background(), "tcp", "vllm.internal:8000")
			require.NoError(t, err)
			require.NoError(t, conn.Close())
			require.Equal(t, []string{"127.0.0.1:8000"}, rec.calls())
		})
	}
	// A host entry vouches for that name only, not for the address.
	rec := &recordingDial{}
	d := &Dialer{Policy: byHost, Resolver: fakeResolver{"evil.example.com": {"127.0.0.1"}}, Dial: rec.dial}
	_, err = d.DialContext(context.Background(), "tcp", "evil.example.com:8000")
	var blocked *BlockedError
	require.True(t, errors.As(err, &blocked), "got %v", err)
	require.Empty(t, rec.calls())
}

func TestDialPassesResolverErrorsOn(t *testing.T) {
	t.Parallel()
	rec := &recordingDial{}
	d := &Dialer{Resolver: fakeResolver{}, Dial: rec.dial}
	_, err := d.DialContext(context.Background(), "tcp", "nowhere.example.com:443")
	var dnsErr *net.DNSError
	require.True(t, errors.As(err, &dnsErr), "got %v", err)
	var blocked *BlockedError
	require.False(t, errors.As(err, &blocked), "a lookup failure is not a refusal")
	require.Empty(t, rec.calls())
}
