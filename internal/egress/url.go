package egress

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// URLError says which rule a base URL breaks. Its message never repeats the
// URL: it may hold an internal address the caller was probing for.
type URLError struct {
	// Rule is a stable name of the rule: "absolute", "userinfo", "query",
	// "fragment", "path", "host", "numeric_host", "local_host",
	// "metadata_host", "port" or "address".
	Rule string
	msg  string
}

// Error implements error; it is a sentence fit for the client.
func (e *URLError) Error() string { return e.msg }

func refuse(rule, msg string) *URLError { return &URLError{Rule: rule, msg: msg} }

// allowHint is how every address rule ends: who can lift it, and how.
const allowHint = "; workspace credentials may reach public addresses only, unless an operator allows more with PERPETUO_EGRESS_ALLOW"

// CheckURL accepts a base URL a workspace may store: absolute http(s), no
// user info, query or fragment, a path without dot segments or encoded
// slashes, and a host that is a DNS name or an IP literal this policy
// allows. A public-looking name passes; what it resolves to is checked again
// at every connection (Dialer), so this is the clear early refusal, not the
// guard itself. The error is a *URLError.
func (p Policy) CheckURL(raw string) error {
	if strings.Contains(raw, "#") {
		return refuse("fragment", "base_url must not have a fragment (#...)")
	}
	if strings.Contains(raw, "?") {
		return refuse("query", "base_url must not have a query string (?...): Perpetuo appends the endpoint path to it")
	}
	if strings.Contains(raw, `\`) {
		return refuse("path", `base_url must not contain backslashes`)
	}
	if strings.Contains(authority(raw), "%") {
		return refuse("host", "base_url's host must be a DNS name or an IP address, without percent-encoding")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Host == "" {
		return refuse("absolute", "base_url must be an absolute http(s) URL, e.g. https://proxy.example.com/v1")
	}
	if u.User != nil {
		return refuse("userinfo", "base_url must not contain user info (user:password@); send the provider key as api_key")
	}
	if err := checkPath(u); err != nil {
		return err
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return refuse("port", "base_url's port must be between 1 and 65535")
		}
	}
	return p.checkHost(u.Hostname())
}

// checkPath refuses paths whose meaning depends on who normalises them:
// dot segments climb out of the intended prefix, and encoded slashes are
// decoded by some proxies and not others.
func checkPath(u *url.URL) error {
	escaped := strings.ToLower(u.EscapedPath())
	if strings.Contains(escaped, "%2f") || strings.Contains(escaped, "%5c") {
		return refuse("path", "base_url's path must not contain encoded slashes (%2F, %5C)")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return refuse("path", "base_url's path must not contain '.' or '..' segments")
		}
	}
	return nil
}

// authority is the raw text between "//" and the path.
func authority(raw string) string {
	_, rest, ok := strings.Cut(raw, "//")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func (p Policy) checkHost(hostname string) error {
	host := canonicalHost(hostname)
	if strings.Contains(host, ":") { // IPv6 literal
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			return refuse("host", "base_url's host must be a DNS name or an IP address (IPv6 in brackets, without a zone)")
		}
		return p.checkAddr(a)
	}
	if endsInNumber(host) {
		// Browsers, curl and libc read 2130706433, 0x7f000001, 0177.1 and
		// 127.1 as IPv4 addresses; Go does not. Only the one spelling every
		// parser agrees on is accepted.
		a, err := netip.ParseAddr(hostname)
		if err != nil || !a.Is4() {
			return refuse("numeric_host", "base_url's host is a number in a non-standard form (decimal, hex, octal or short); write an IPv4 address as four decimal numbers, e.g. 203.0.113.7")
		}
		return p.checkAddr(a)
	}
	if !validDNSName(host) {
		return refuse("host", "base_url's host must be a DNS name (letters, digits, '-' and '.'; IDNs in punycode) or an IP address")
	}
	if p.allowsHost(host) {
		return nil
	}
	if metadataHosts[host] {
		return refuse("metadata_host", "base_url's host is a cloud metadata service"+allowHint)
	}
	if localName(host) {
		return refuse("local_host", "base_url's host is a local name (localhost, a name without a dot, *.local, *.internal, ...) that resolves only inside a private network"+allowHint)
	}
	return nil
}

func (p Policy) checkAddr(a netip.Addr) error {
	if rule := p.Forbidden(a); rule != "" {
		return refuse("address", "base_url's host is a "+rule+" address"+allowHint)
	}
	return nil
}

// metadataHosts are names of cloud metadata services.
var metadataHosts = map[string]bool{
	"metadata.google.internal": true, "metadata.goog": true, "metadata": true,
	"instance-data": true, "instance-data.ec2.internal": true,
}

// localSuffixes are zones that only resolve on private networks.
var localSuffixes = []string{".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet", ".corp"}

func localName(host string) bool {
	if host == "localhost" || !strings.Contains(host, ".") {
		return true
	}
	for _, s := range localSuffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// validDNSName reports whether host (canonical) is a DNS host name: at most
// 253 bytes, labels of 1 to 63 letters, digits and inner hyphens.
func validDNSName(host string) bool {
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// endsInNumber is the WHATWG URL rule for "this host is an IPv4 address":
// its last label (after one trailing dot) is decimal digits, or 0x followed
// by hex digits. No real top-level domain looks like that.
func endsInNumber(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndex(host, ".")+1:]
	if last == "" {
		return false
	}
	if l := strings.ToLower(last); strings.HasPrefix(l, "0x") {
		return strings.Trim(l[2:], "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}
