package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/perpetuo/perpetuo/internal/safetext"
)

// The OTLP/HTTP exporters are Perpetuo's own: the upstream ones link gRPC,
// grpc-gateway and the generated OTLP types, about 10 MB of binary and
// 5 MiB of resident memory at idle, for the few messages encoded in
// otlp_encode.go. otlp_test.go checks every message against the upstream
// exporters' bytes.

// otlpEndpoint is where one signal goes and how, from the standard
// OTEL_EXPORTER_OTLP_* variables.
type otlpEndpoint struct {
	url     string
	headers map[string]string
	timeout time.Duration
	gzip    bool
	tls     *tls.Config // nil: the system's roots
	// temporality is the metrics' preference: "cumulative" (default),
	// "delta" or "lowmemory".
	temporality string
}

// defaultOTLPTimeout is OTEL_EXPORTER_OTLP_TIMEOUT's default.
const defaultOTLPTimeout = 10 * time.Second

// otlpFromEnv reads signal's ("traces", "metrics") settings: the
// per-signal variable wins over the general one, and a per-signal endpoint
// is used as it is while the general one gets /v1/<signal> appended.
func otlpFromEnv(env map[string]string, signal string) (otlpEndpoint, error) {
	upper := strings.ToUpper(signal)
	get := func(name string) (string, string) {
		k := "OTEL_EXPORTER_OTLP_" + upper + "_" + name
		if v := strings.TrimSpace(env[k]); v != "" {
			return v, k
		}
		k = "OTEL_EXPORTER_OTLP_" + name
		return strings.TrimSpace(env[k]), k
	}
	e := otlpEndpoint{timeout: defaultOTLPTimeout}
	endpointKey := "OTEL_EXPORTER_OTLP_" + upper + "_ENDPOINT"
	if v := strings.TrimSpace(env[endpointKey]); v != "" {
		e.url = v
	} else if v := strings.TrimSpace(env["OTEL_EXPORTER_OTLP_ENDPOINT"]); v != "" {
		endpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT"
		e.url = strings.TrimRight(v, "/") + "/v1/" + signal
	}
	if u, err := url.Parse(e.url); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return otlpEndpoint{}, fmt.Errorf("%s must be an http or https URL", endpointKey)
	}
	if v, k := get("HEADERS"); v != "" {
		h, err := parseOTLPHeaders(v)
		if err != nil {
			return otlpEndpoint{}, fmt.Errorf("%s: %w", k, err)
		}
		e.headers = h
	}
	if v, k := get("TIMEOUT"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return otlpEndpoint{}, fmt.Errorf("%s must be a positive number of milliseconds", k)
		}
		e.timeout = time.Duration(ms) * time.Millisecond
	}
	switch v, k := get("COMPRESSION"); strings.ToLower(v) {
	case "", "none":
	case "gzip":
		e.gzip = true
	default:
		return otlpEndpoint{}, fmt.Errorf("%s must be gzip or none", k)
	}
	var err error
	if e.tls, err = otlpTLS(get); err != nil {
		return otlpEndpoint{}, err
	}
	if signal == "metrics" {
		switch v := strings.ToLower(strings.TrimSpace(env["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"])); v {
		case "", "cumulative", "delta", "lowmemory":
			e.temporality = v
		default:
			return otlpEndpoint{}, errors.New("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE must be cumulative, delta or lowmemory")
		}
	}
	return e, nil
}

// parseOTLPHeaders reads "k1=v1,k2=v2" with URL-encoded values.
func parseOTLPHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for i, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %d is not key=value", i+1)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("entry %d: the value is not URL-encoded", i+1)
		}
		h[k] = dv
	}
	return h, nil
}

// otlpTLS is the CA bundle and client certificate the variables name, or
// nil when they name none.
func otlpTLS(get func(string) (string, string)) (*tls.Config, error) {
	ca, caKey := get("CERTIFICATE")
	cert, certKey := get("CLIENT_CERTIFICATE")
	key, keyKey := get("CLIENT_KEY")
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot read the file", caKey)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in the file", caKey)
		}
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("%s and %s go together", certKey, keyKey)
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%s, %s: not a PEM certificate and its key", certKey, keyKey)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	return c, nil
}

// otlpClient posts encoded export requests to one endpoint.
type otlpClient struct {
	e       otlpEndpoint
	http    *http.Client
	stopped atomic.Bool

	mu       sync.Mutex
	inflight sync.WaitGroup
	conns    map[net.Conn]struct{} // open connections, closed by shutdown
}

func newOTLPClient(e otlpEndpoint) *otlpClient {
	c := &otlpClient{e: e, conns: map[net.Conn]struct{}{}}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if e.tls != nil {
		t.TLSClientConfig = e.tls
	}
	dial := (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: conn, c: c}
		c.mu.Lock()
		c.conns[tc] = struct{}{}
		c.mu.Unlock()
		return tc, nil
	}
	c.http = &http.Client{Transport: t}
	return c
}

// trackedConn leaves the client's set when closed.
type trackedConn struct {
	net.Conn
	c    *otlpClient
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.c.mu.Lock()
		delete(t.c.conns, t)
		t.c.mu.Unlock()
	})
	return t.Conn.Close()
}

// errOTLPStopped is what an export after Shutdown returns.
var errOTLPStopped = errors.New("OTLP exporter is shut down")

// otlpRetryFor bounds the retries of one export.
const otlpRetryFor = time.Minute

// post sends body, retrying what the OTLP specification says is
// retryable (429, 502, 503, 504 and failures to connect) with exponential
// backoff, honouring Retry-After, for up to otlpRetryFor. Each attempt is
// bounded by the endpoint's timeout.
func (c *otlpClient) post(ctx context.Context, body []byte) error {
	c.mu.Lock()
	if c.stopped.Load() {
		c.mu.Unlock()
		return errOTLPStopped
	}
	c.inflight.Add(1)
	c.mu.Unlock()
	defer c.inflight.Done()
	if c.e.gzip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
	}
	deadline := time.Now().Add(otlpRetryFor)
	backoff := time.Second
	for {
		retry, after, err := c.attempt(ctx, body)
		if err == nil || !retry {
			return err
		}
		wait := backoff
		if after >= 0 {
			wait = after
		}
		if time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// attempt is one POST: whether a failure is worth retrying, and after how
// long the server asked for (-1: it did not say).
func (c *otlpClient) attempt(ctx context.Context, body []byte) (retry bool, after time.Duration, err error) {
	actx, cancel := context.WithTimeout(ctx, c.e.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.e.url, bytes.NewReader(body))
	if err != nil {
		return false, 0, fmt.Errorf("OTLP export: %w", err)
	}
	for k, v := range c.e.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if c.e.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	after = -1
	resp, err := c.http.Do(req)
	if err != nil {
		return ctx.Err() == nil, after, fmt.Errorf("OTLP export: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, 0, nil
	}
	err = fmt.Errorf("OTLP export to %s: HTTP %d %s", c.e.url, resp.StatusCode, safetext.Clean(string(msg), 200))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s >= 0 {
			after = time.Duration(s) * time.Second
		}
		return true, after, err
	}
	return false, after, err
}

// shutdown refuses further exports, waits for those under way and closes
// every connection: an idle one goes back to the pool only after its
// response was read, so closing the pool's alone could leave one open.
func (c *otlpClient) shutdown() {
	c.mu.Lock()
	c.stopped.Store(true)
	c.mu.Unlock()
	c.inflight.Wait()
	c.http.CloseIdleConnections()
	c.mu.Lock()
	conns := make([]net.Conn, 0, len(c.conns))
	for conn := range c.conns {
		conns = append(conns, conn)
	}
	c.mu.Unlock()
	for _, conn := range conns {
		_ = conn.Close()
	}
}
