// Package egress decides where a URL chosen by a workspace (a BYOK
// credential's base_url) may lead. Without it any workspace admin could make
// the gateway post to loopback, the database port, a cloud metadata service
// or the operator's private network, with a path of its choosing.
//
// Two checks, because one is not enough: CheckURL refuses an address that is
// visibly internal when the URL is stored, with a message saying which rule it
// breaks; Dialer refuses, at connect time, every resolved IP that is
// internal, so a public name that later resolves (or is rebound) to an
// internal address still cannot be reached. Operator-configured providers do
// not go through either: the operator chose their addresses.
//
// Forbidden unless the operator's Policy allows it: loopback, private (RFC
// 1918, fc00::/7), link-local, unspecified and 0.0.0.0/8, multicast, shared
// (CGNAT 100.64.0.0/10), reserved and documentation ranges, broadcast, and
// IPv6 forms that embed such an IPv4 address (mapped, NAT64, 6to4).
// Cloud metadata addresses stay forbidden even inside an allowed range; only
// an entry naming that exact address opens one.
package egress

import (
	"fmt"
	"net/netip"
	"strings"
)

// Policy is what the operator lets workspace credentials reach beyond public
// addresses (PERPETUO_EGRESS_ALLOW). The zero value allows public addresses
// only.
type Policy struct {
	// Prefixes are address ranges workspace credentials may also reach.
	Prefixes []netip.Prefix
	// Hosts are host names (lower case, no trailing dot) workspace
	// credentials may reach whatever they resolve to: the operator vouches
	// for their DNS.
	Hosts []string
}

// ParseAllow reads a comma-separated list of CIDRs (10.0.0.0/8), single
// addresses (10.1.2.3) and host names (vllm.internal). Empty entries are
// ignored, so "" is the zero Policy.
func ParseAllow(s string) (Policy, error) {
	var p Policy
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if pr, err := netip.ParsePrefix(item); err == nil {
			p.Prefixes = append(p.Prefixes, pr.Masked())
			continue
		}
		if a, err := netip.ParseAddr(item); err == nil && a.Zone() == "" {
			p.Prefixes = append(p.Prefixes, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		host := canonicalHost(item)
		if !validDNSName(host) || endsInNumber(host) {
			return Policy{}, fmt.Errorf("entry %q is neither a CIDR (e.g. 10.0.0.0/8), an IP address nor a host name (e.g. vllm.internal)", item)
		}
		p.Hosts = append(p.Hosts, host)
	}
	return p, nil
}

// Allowed reports whether a workspace credential may connect to addr, which
// host resolved to (host may be "" when the URL held an IP literal).
func (p Policy) Allowed(addr netip.Addr, host string) bool {
	return p.allowsHost(host) || p.Forbidden(addr) == ""
}

// Forbidden returns the rule that keeps workspace credentials from addr
// ("loopback", "private", ...), or "" when they may reach it.
func (p Policy) Forbidden(addr netip.Addr) string {
	a := addr.Unmap().WithZone("")
	if !a.IsValid() {
		return "invalid"
	}
	if metadata[a] {
		for _, pr := range p.Prefixes {
			if pr.Bits() == a.BitLen() && pr.Addr() == a {
				return ""
			}
		}
		return "cloud metadata"
	}
	for _, pr := range p.Prefixes {
		if pr.Contains(a) {
			return ""
		}
	}
	return rangeRule(a)
}

func (p Policy) allowsHost(host string) bool {
	host = canonicalHost(host)
	if host == "" {
		return false
	}
	for _, h := range p.Hosts {
		if h == host {
			return true
		}
	}
	return false
}

// canonicalHost lower-cases a host name and drops one trailing dot, so
// "LOCALHOST." and "localhost" are one name to every rule.
func canonicalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// metadata are the cloud instance metadata services (AWS, GCP, Azure, OCI:
// 169.254.169.254; AWS ECS and EKS credentials; AWS IPv6; Alibaba).
var metadata = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true,
	netip.MustParseAddr("169.254.170.2"):   true,
	netip.MustParseAddr("169.254.170.23"):  true,
	netip.MustParseAddr("fd00:ec2::254"):   true,
	netip.MustParseAddr("fd00:ec2::23"):    true,
	netip.MustParseAddr("100.100.100.200"): true,
}

// ranges are the non-public address ranges, first match wins.
var ranges = []struct {
	prefix netip.Prefix
	rule   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved"},
	{netip.MustParsePrefix("192.0.2.0/24"), "reserved"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved"},
	{netip.MustParsePrefix("198.51.100.0/24"), "reserved"},
	{netip.MustParsePrefix("203.0.113.0/24"), "reserved"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("::/96"), "reserved"}, // IPv4-compatible, deprecated
	{netip.MustParsePrefix("100::/64"), "reserved"},
	{netip.MustParsePrefix("2001::/32"), "reserved"}, // Teredo tunnels to an IPv4 host
	{netip.MustParsePrefix("2001:db8::/32"), "reserved"},
	{netip.MustParsePrefix("fc00::/7"), "private"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "private"}, // site-local, deprecated
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// embedding are IPv6 ranges that carry an IPv4 address (NAT64 and 6to4)
// and reach it: such an address is as forbidden as the IPv4 it carries.
var embedding = []struct {
	prefix netip.Prefix
	at     int // byte offset of the IPv4 address
}{
	{netip.MustParsePrefix("64:ff9b::/96"), 12},
	{netip.MustParsePrefix("64:ff9b:1::/48"), 12},
	{netip.MustParsePrefix("2002::/16"), 2},
}

// rangeRule names the non-public range holding a (already unmapped), or "".
func rangeRule(a netip.Addr) string {
	for _, r := range ranges {
		if r.prefix.Contains(a) {
			return r.rule
		}
	}
	for _, e := range embedding {
		if e.prefix.Contains(a) {
			b := a.As16()
			v4 := netip.AddrFrom4([4]byte(b[e.at : e.at+4]))
			if metadata[v4] {
				return "cloud metadata"
			}
			return rangeRule(v4)
		}
	}
	return ""
}
