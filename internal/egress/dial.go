package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Resolver looks host names up; *net.Resolver is one. Tests inject a fake so
// that no address check ever depends on, or sends anything to, real DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer connects only to addresses its Policy allows. It resolves the host
// itself and dials the chosen IP literal, so the address checked is the
// address connected to: a name rebound between a check and a connect
// cannot slip through.
type Dialer struct {
	Policy Policy
	// Resolver looks names up; nil: net.DefaultResolver.
	Resolver Resolver
	// Dial connects to an IP literal; nil: a net.Dialer with
	// http.DefaultTransport's timeouts.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// BlockedError is a connection refused because every address of Host is
// forbidden. Its text names the addresses, for operators' logs; clients get
// a message of their own.
type BlockedError struct {
	Host    string
	Refused []string // "address (rule)"
}

// Error implements error.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("egress: %s resolves only to addresses workspace credentials may not reach: %s",
		e.Host, strings.Join(e.Refused, ", "))
}

// DialContext has the signature of http.Transport.DialContext. Addresses
// are tried in the resolver's order, skipping forbidden ones; when none is
// left it fails with a *BlockedError and dials nothing.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("egress: port %q: %w", portText, err)
	}
	addrs, err := d.resolve(ctx, network, host)
	if err != nil {
		return nil, err
	}
	var refused []string
	var lastErr error
	for _, a := range addrs {
		a = a.Unmap()
		if !d.Policy.Allowed(a, host) {
			refused = append(refused, fmt.Sprintf("%s (%s)", a, d.Policy.Forbidden(a)))
			continue
		}
		conn, err := d.dial(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, &BlockedError{Host: host, Refused: refused}
}

func (d *Dialer) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ipNet := "ip"
	switch network {
	case "tcp4", "udp4":
		ipNet = "ip4"
	case "tcp6", "udp6":
		ipNet = "ip6"
	}
	var r Resolver = net.DefaultResolver
	if d.Resolver != nil {
		r = d.Resolver
	}
	addrs, err := r.LookupNetIP(ctx, ipNet, host)
	if err != nil {
		return nil, fmt.Errorf("egress: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("egress: resolve %s: %w", host, errors.New("no addresses"))
	}
	return addrs, nil
}

func (d *Dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d.Dial != nil {
		return d.Dial(ctx, network, addr)
	}
	nd := net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second} // http.DefaultTransport's
	return nd.DialContext(ctx, network, addr)
}
