// Package providers holds one adapter per upstream API family. An adapter
// speaks its provider's real wire format and presents the result to the
// gateway in OpenAI's Chat Completions shape: a chat.completion body, or a
// sequence of chat.completion.chunk events. Upstream failures come back as
// *Error, classified once here into Perpetuo's error catalog.
package providers

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/jsonedit"
)

// Call is one attempt at one upstream endpoint.
type Call struct {
	Provider      string // slug, for messages
	BaseURL       string // e.g. https://api.openai.com/v1
	APIKey        string
	UpstreamModel string
	Body          []byte // the client's request JSON, extensions included
	// Edits are the gateway's changes to Body's top-level members (the
	// output cap), made in the adapter's one pass over it.
	Edits  []jsonedit.Edit
	Stream bool
	// Compat is the provider's departures from OpenAI's wire format (the
	// OpenAI-compatible family's auth header, stream usage and reasoning
	// field).
	Compat catalog.Compat
	// Deployment and APIVersion address an Azure OpenAI deployment
	// (the credential's mapping of the upstream model, else the model
	// itself; its API version, else DefaultAzureAPIVersion).
	Deployment, APIVersion string
	// MaxOutput is the output cap for families that require one
	// (Anthropic's max_tokens) when the request sets none: the endpoint's
	// bound from the catalog.
	MaxOutput int
	// Untrusted marks a base URL a workspace chose (a BYOK credential's
	// base_url): the call goes through the guarded client, which connects
	// only where the egress policy allows.
	Untrusted bool
	// BYOK marks a call made with the workspace's own credential, with or
	// without its own base URL: when the provider refuses that credential,
	// a workspace admin must act, not the operator.
	BYOK bool
}

// Usage is what the upstream reported it used, in OpenAI's convention
// whatever the provider's (see catalog.Tokens): PromptTokens include
// CachedTokens (cache reads) and CacheWriteTokens, CompletionTokens
// include ReasoningTokens.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	ReasoningTokens  int
	CachedTokens     int
	CacheWriteTokens int
}

// Tokens are u's counts for pricing.
func (u Usage) Tokens() catalog.Tokens {
	return catalog.Tokens{Prompt: u.PromptTokens, Completion: u.CompletionTokens,
		CacheRead: u.CachedTokens, CacheWrite: u.CacheWriteTokens, Reasoning: u.ReasoningTokens}
}

// Completion is a finished non-streaming response.
type Completion struct {
	Body         []byte // chat.completion JSON as the upstream sent it (translated to OpenAI's shape if needed)
	Usage        Usage
	HasUsage     bool
	UpstreamID   string
	FinishReason string
	// Failure is set when the upstream answered 200 with partial output
	// and an error (its choice finishing with "error"): classified like
	// an in-stream error event.
	Failure *Error
}

// Stream yields chat.completion.chunk JSON documents until io.EOF (the
// upstream's end of stream). Close releases the connection; it must be called.
// A chunk is an object, but the caller validates the rest of it: it reads
// every chunk whole anyway, and checking it here too cost a second pass.
type Stream interface {
	Next() ([]byte, error)
	// Ready reports whether Next would return at once, its chunk already
	// received: the relay flushes to the client only when it would not.
	Ready() bool
	Close() error
}

// streamBody is a stream's response body. Once the stream's own end marker
// has been read ([DONE], message_stop), Close first reads what the upstream
// still sends: over HTTP/1.1, the chunked body's last chunk. Closed before
// it, the body takes its connection with it, and the next request to the
// upstream dials a new one (TCP, and TLS for a remote provider). Close reads
// at most drainMax bytes and waits at most drainWait for them, so an
// upstream that keeps a finished stream open costs no more than that.
type streamBody struct {
	rc    io.ReadCloser
	ended bool // the end marker was read
}

const (
	drainMax  = 4 << 10
	drainWait = 50 * time.Millisecond
)

func (b *streamBody) Close() error {
	if b.ended {
		t := time.AfterFunc(drainWait, func() { _ = b.rc.Close() })
		_, _ = io.CopyN(io.Discard, b.rc, drainMax)
		t.Stop()
	}
	return b.rc.Close()
}

// Adapter calls one API family.
type Adapter interface {
	Complete(ctx context.Context, c Call) (*Completion, error)
	Stream(ctx context.Context, c Call) (Stream, error)
}

// Registry maps API families ("openai", ...) to adapters.
type Registry map[string]Adapter

// NewRegistry returns the adapters Perpetuo ships. trusted calls the
// operator's base URLs; guarded calls the ones workspaces chose
// (Call.Untrusted), see NewGuardedClient.
func NewRegistry(trusted, guarded *http.Client) Registry {
	return Registry{"openai": NewOpenAI(trusted, guarded), "anthropic": NewAnthropic(trusted, guarded),
		"gemini": NewGemini(trusted, guarded), "azure": NewAzure(trusted, guarded)}
}

// DefaultConnectTimeout bounds connecting to an upstream (TCP and TLS).
const DefaultConnectTimeout = 10 * time.Second

// NewHTTPClient is NewHTTPClientWith(DefaultConnectTimeout).
func NewHTTPClient() *http.Client { return NewHTTPClientWith(DefaultConnectTimeout) }

// NewHTTPClientWith returns the client adapters share: pooled connections,
// connecting (TCP, then TLS) bounded by connect, and redirects never
// followed, so a credential is never sent to another host.
func NewHTTPClientWith(connect time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.DialContext = ConnectDialer(connect).DialContext
	t.TLSHandshakeTimeout = connect
	return &http.Client{Transport: &protoSplit{h1: t}, CheckRedirect: noRedirects}
}

// BaseTransport is the *http.Transport whose settings c's connections use
// (a client of NewHTTPClientWith or NewGuardedClient), or nil.
func BaseTransport(c *http.Client) *http.Transport {
	switch t := c.Transport.(type) {
	case *protoSplit:
		return t.h1
	case *http.Transport:
		return t
	}
	return nil
}

// protoSplit sends the requests to hosts that answered over HTTP/2 (over
// TLS, without a proxy) through an HTTP/2 transport of their own, whose
// pool dials one connection to a host at a time and shares it with every
// request waiting for one; it dials through h1's dialer and TLS settings.
//
// net/http's transport dials a new connection for every request that finds
// no HTTP/2 connection with a free stream, then closes the ones it did not
// need: a burst of 2,000 streams a second made 1,100 to 5,800 TLS handshakes
// for 40 connections' worth of streams (golang/go#13957), with their CPU
// and the memory of those in flight, and the spread of the held-streams
// figures. MaxConnsPerHost does not help: net/http stops counting a full
// HTTP/2 connection, and on an HTTP/1.1 host it caps the connections.
//
// A host that stops negotiating HTTP/2 goes back to h1 for that request
// (nothing was sent yet) and the next ones.
//
// Until a host's protocol is known, one request connects to it and the
// others to the same host wait for that connection (not for its answer): a
// burst at a host not called before otherwise went through h1, one dial per
// request, before the first answer taught the host (1,068 to 3,167
// connections for 10,000 streams in the bench's held-streams phase).
type protoSplit struct {
	h1     *http.Transport
	mu     sync.Mutex
	h2     atomic.Pointer[http2.Transport] // set before the first host is
	hosts  sync.Map                        // URL.Host of https hosts last heard over HTTP/2
	h1only sync.Map                        // URL.Host of https hosts last heard over HTTP/1.1
	probes sync.Map                        // URL.Host → *probe, while its first connection is made
}

// probe is the first connection to a host being made; done closes when
// the request making it has its connection, or failed.
type probe struct {
	done chan struct{}
	once sync.Once
}

func (pr *probe) end() { pr.once.Do(func() { close(pr.done) }) }

// errNoH2 is a dial of the HTTP/2 transport that did not negotiate h2.
var errNoH2 = errors.New("the upstream did not negotiate HTTP/2")

func (p *protoSplit) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return p.h1.RoundTrip(req)
	}
	host := req.URL.Host
	if !p.known(host) {
		pr := &probe{done: make(chan struct{})}
		v, connecting := p.probes.LoadOrStore(host, pr)
		if !connecting {
			return p.first(req, pr)
		}
		select { // then as the first connection taught (h1 if it failed)
		case <-v.(*probe).done:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	if _, ok := p.hosts.Load(host); ok {
		resp, err := p.h2.Load().RoundTrip(req)
		if !errors.Is(err, errNoH2) {
			return resp, err
		}
		p.hosts.Delete(host)
	}
	resp, err := p.h1.RoundTrip(req)
	p.learn(req, resp, err)
	return resp, err
}

// known reports whether host's protocol was learnt.
func (p *protoSplit) known(host string) bool {
	if _, ok := p.hosts.Load(host); ok {
		return true
	}
	_, ok := p.h1only.Load(host)
	return ok
}

// first sends the request that makes the first connection to its host, and
// learns the host's protocol from that connection, as soon as it is made.
func (p *protoSplit) first(req *http.Request, pr *probe) (*http.Response, error) {
	defer p.probes.Delete(req.URL.Host)
	defer pr.end()
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if tc, ok := info.Conn.(*tls.Conn); ok {
			p.learnProto(req, tc.ConnectionState().NegotiatedProtocol == http2.NextProtoTLS)
		}
		pr.end()
	}}
	resp, err := p.h1.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	p.learn(req, resp, err)
	return resp, err
}

// learn records the protocol req's host answered with.
func (p *protoSplit) learn(req *http.Request, resp *http.Response, err error) {
	if err == nil {
		p.learnProto(req, resp.ProtoMajor == 2)
	}
}

func (p *protoSplit) learnProto(req *http.Request, h2 bool) {
	if h2 && !p.proxied(req) {
		p.h2Transport()
		p.hosts.Store(req.URL.Host, struct{}{})
		p.h1only.Delete(req.URL.Host)
		return
	}
	p.h1only.Store(req.URL.Host, struct{}{})
}

// proxied says whether h1 reaches req's host through a proxy, which the
// HTTP/2 transport cannot use.
func (p *protoSplit) proxied(req *http.Request) bool {
	if p.h1.Proxy == nil {
		return false
	}
	u, err := p.h1.Proxy(req)
	return err != nil || u != nil
}

// h2Transport is the HTTP/2 hosts' transport, made at the first.
func (p *protoSplit) h2Transport() *http2.Transport {
	if t := p.h2.Load(); t != nil {
		return t
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.h2.Load(); t != nil {
		return t
	}
	h1 := p.h1
	var tlsConf *tls.Config
	if h1.TLSClientConfig != nil {
		tlsConf = h1.TLSClientConfig.Clone()
	}
	dial := h1.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	t := &http2.Transport{
		TLSClientConfig:    tlsConf,
		DisableCompression: h1.DisableCompression,
		IdleConnTimeout:    h1.IdleConnTimeout,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			raw, err := dial(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if d := h1.TLSHandshakeTimeout; d > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
			tc := tls.Client(raw, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = raw.Close()
				return nil, err
			}
			if tc.ConnectionState().NegotiatedProtocol != http2.NextProtoTLS {
				_ = tc.Close()
				return nil, errNoH2
			}
			return tc, nil
		},
	}
	p.h2.Store(t)
	return t
}

// CloseIdleConnections closes both transports' idle connections.
func (p *protoSplit) CloseIdleConnections() {
	p.h1.CloseIdleConnections()
	if t := p.h2.Load(); t != nil {
		t.CloseIdleConnections()
	}
}

// ConnectDialer dials with the connect timeout (and TCP keep-alives).
func ConnectDialer(connect time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}
}

// NewGuardedClient returns a client with trusted's transport settings whose
// every connection is made by dial (an egress.Dialer's DialContext). Its
// pool is its own, so it never reuses a connection the trusted client made.
// It uses no proxy: a proxy would connect on its behalf, past the check.
func NewGuardedClient(trusted *http.Client, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	base := BaseTransport(trusted)
	if base == nil {
		base = BaseTransport(NewHTTPClient())
	}
	t := base.Clone()
	t.Proxy = nil
	t.DialContext = dial
	// Either of these would replace DialContext for some connections.
	t.DialTLSContext, t.DialTLS, t.Dial = nil, nil, nil //nolint:staticcheck // Dial and DialTLS are deprecated, still honoured
	return &http.Client{Transport: &protoSplit{h1: t}, CheckRedirect: noRedirects, Timeout: trusted.Timeout}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// endpointURL joins base and path as URLs, not strings: a trailing slash,
// a query (operator URLs only; workspace ones may not have one) or a
// fragment of base cannot swallow or reshape the path.
// The answer is memoised: the same few bases and paths come with every
// request, and parsing and joining them was about 1% of the gateway's CPU.
func endpointURL(base, path string) (string, error) {
	k := [2]string{base, path}
	endpoints.RLock()
	u, ok := endpoints.m[k]
	endpoints.RUnlock()
	if ok {
		return u, nil
	}
	u, err := joinEndpoint(base, path)
	if err != nil {
		return "", err
	}
	endpoints.Lock()
	if len(endpoints.m) >= maxEndpoints {
		clear(endpoints.m) // tenants' bases and models are many; a refill is cheap
	}
	endpoints.m[k] = u
	endpoints.Unlock()
	return u, nil
}

// endpoints holds endpointURL's answers, at most maxEndpoints of them.
var endpoints = struct {
	sync.RWMutex
	m map[[2]string]string
}{m: map[[2]string]string{}}

const maxEndpoints = 1024

func joinEndpoint(base, path string) (string, error) {
	if base == "" {
		return "", errors.New("no base URL configured")
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("base URL is not an absolute http(s) URL")
	}
	u.Fragment, u.RawFragment = "", ""
	return u.JoinPath(path).String(), nil
}
