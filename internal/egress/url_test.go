package egress

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckURLRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, url, rule string }{
		{"ftp", "ftp://api.example.com/v1", "absolute"},
		{"relative", "/v1", "absolute"},
		{"no host", "https:///v1", "absolute"},
		{"opaque", "https:api.example.com", "absolute"},
		{"userinfo", "https://u:p@api.example.com/v1", "userinfo"},
		{"user only", "https://u@api.example.com/v1", "userinfo"},
		{"query", "https://h.example.com/v1?x=1", "query"},
		{"empty query", "https://h.example.com/v1?", "query"},
		{"fragment", "https://h.example.com/v1#f", "fragment"},
		{"empty fragment", "https://h.example.com/v1#", "fragment"},
		{"dot dot", "https://h.example.com/v1/../admin", "path"},
		{"encoded dot dot", "https://h.example.com/v1/%2e%2e/admin", "path"},
		{"dot", "https://h.example.com/./v1", "path"},
		{"encoded slash", "https://h.example.com/v1%2Fadmin", "path"},
		{"encoded backslash", "https://h.example.com/v1%5cadmin", "path"},
		{"backslash", `https://h.example.com\v1`, "path"},
		{"port zero", "https://h.example.com:0/v1", "port"},
		{"port too big", "https://h.example.com:70000/v1", "port"},
		{"percent host", "https://%6c%6fcalhost/v1", "host"},
		{"underscore host", "https://a_b.example.com/v1", "host"},
		{"unicode host", "https://exämple.com/v1", "host"},
		{"ipv6 zone", "http://[fe80::1%25eth0]/v1", "host"},
		{"loopback", "http://127.0.0.1:1/v1", "address"},
		{"loopback other", "http://127.8.9.10/v1", "address"},
		{"ipv6 loopback", "http://[::1]:8080/v1", "address"},
		{"mapped loopback", "http://[::ffff:127.0.0.1]/", "address"},
		{"mapped hex loopback", "http://[::ffff:7f00:1]/", "address"},
		{"nat64 private", "http://[64:ff9b::10.0.0.5]/", "address"},
		{"6to4 loopback", "http://[2002:7f00:1::]/", "address"},
		{"unspecified", "http://0.0.0.0:5432/", "address"},
		{"this network", "http://0.1.2.3/", "address"},
		{"ipv6 unspecified", "http://[::]/", "address"},
		{"rfc1918 10", "http://10.0.0.5/v1", "address"},
		{"rfc1918 172", "http://172.16.0.1/v1", "address"},
		{"rfc1918 192", "http://192.168.1.1/v1", "address"},
		{"ula", "http://[fd12:3456::1]/v1", "address"},
		{"link-local", "http://169.254.1.1/", "address"},
		{"metadata", "http://169.254.169.254/", "address"},
		{"ipv6 link-local", "http://[fe80::1]/", "address"},
		{"aws ipv6 metadata", "http://[fd00:ec2::254]/", "address"},
		{"cgnat", "http://100.64.0.1/", "address"},
		{"multicast", "http://224.0.0.1/", "address"},
		{"broadcast", "http://255.255.255.255/", "address"},
		{"decimal", "http://2130706433/", "numeric_host"},
		{"hex", "http://0x7f000001/", "numeric_host"},
		{"octal", "http://0177.0.0.1/", "numeric_host"},
		{"short", "http://127.1/", "numeric_host"},
		{"leading zero", "http://127.0.0.01/", "numeric_host"},
		{"trailing dot ip", "http://127.0.0.1./", "numeric_host"},
		{"hex last label", "http://a.0x10/", "numeric_host"},
		{"public decimal", "http://134744072/", "numeric_host"}, // 8.8.8.8: still refused, parsers disagree
		{"localhost", "http://localhost:8080/v1", "local_host"},
		{"localhost upper dot", "http://LOCALHOST./v1", "local_host"},
		{"sub localhost", "http://api.localhost/v1", "local_host"},
		{"single label", "http://postgres:5432/", "local_host"},
		{"mdns", "http://printer.local/", "local_host"},
		{"internal", "http://vllm.internal/v1", "local_host"},
		{"gcp metadata", "http://metadata.google.internal/computeMetadata/v1/", "metadata_host"},
		{"gcp metadata dot", "http://Metadata.Google.Internal./", "metadata_host"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Policy{}.CheckURL(tc.url)
			var ue *URLError
			require.True(t, errors.As(err, &ue), "%s must be refused, got %v", tc.url, err)
			require.Equal(t, tc.rule, ue.Rule, "%s: %v", tc.url, err)
			if a := authority(tc.url); a != "" {
				require.NotContains(t, ue.Error(), a, "the message must not echo the value")
			}
		})
	}
}

func TestCheckURLAccepts(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"https://api.openai.com/v1",
		"https://my-resource.openai.azure.com/openai/v1/",
		"http://api.example.com:8443/v1",
		"https://API.Example.COM/v1",
		"https://api.example.com./v1",
		"https://8.8.8.8/v1",
		"https://[2606:4700:4700::1111]/v1",
		"https://xn--exmple-cua.com/v1",
		"https://h.example.com",
		"https://1password.example.com/v1", // a numeric first label is a name, not a number
	} {
		require.NoError(t, Policy{}.CheckURL(u), u)
	}
}

func TestCheckURLHonoursTheAllowlist(t *testing.T) {
	t.Parallel()
	p, err := ParseAllow("10.0.0.0/8, 127.0.0.0/8,vllm.internal,fd00::/8, 169.254.0.0/16")
	require.NoError(t, err)
	for _, u := range []string{
		"http://10.1.2.3:8000/v1", "http://127.0.0.1:9090/v1", "http://[::ffff:127.0.0.1]/v1",
		"http://vllm.internal/v1", "http://VLLM.internal./v1", "http://[fd00::5]/v1", "http://169.254.1.1/",
	} {
		require.NoError(t, p.CheckURL(u), u)
	}
	for _, u := range []string{
		"http://192.168.1.1/v1",            // not in the list
		"http://other.internal/v1",         // only the named host
		"http://169.254.169.254/",          // metadata is not opened by a range
		"http://[fd00:ec2::254]/",          // nor is its IPv6 form
		"http://2130706433/",               // numbers in odd forms never pass
		"http://10.0.0.1/v1?x=1",           // nor queries
		"http://vllm.internal/v1/../x",     // nor dot segments
		"http://metadata.google.internal/", // nor an unlisted metadata name
	} {
		require.Error(t, p.CheckURL(u), u)
	}
	exact, err := ParseAllow("169.254.169.254")
	require.NoError(t, err)
	require.NoError(t, exact.CheckURL("http://169.254.169.254/"), "an entry naming the metadata address opens it")
}

func TestParseAllow(t *testing.T) {
	t.Parallel()
	p, err := ParseAllow("")
	require.NoError(t, err)
	require.Equal(t, Policy{}, p)
	p, err = ParseAllow(" 10.0.0.1/8 ,, 192.0.2.7 , Vllm.Internal. ")
	require.NoError(t, err)
	require.Equal(t, "10.0.0.0/8", p.Prefixes[0].String(), "prefixes are masked")
	require.Equal(t, "192.0.2.7/32", p.Prefixes[1].String())
	require.Equal(t, []string{"vllm.internal"}, p.Hosts)
	for _, bad := range []string{"10.0.0.0/33", "not a host", "http://x", "a_b", "2130706433", "fe80::1%eth0", "*.internal"} {
		_, err := ParseAllow(bad)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "10.0.0.0/8", "the error shows the expected form")
	}
}
