package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// slowPace is the slow streams' upstream pace: the 30-word echo takes
// about thirty seconds, so every stream is held at once for many seconds.
const slowPace = 1 // tokens per second

// heldStreams is what holding many slow streams through the gateway cost.
type heldStreams struct {
	requested int
	fdLimit   int // the open-file limit that capped n below requested, or 0
	n         int
	maxHeld   int64 // most streams open at once (headers received, body not ended)
	ok        int
	errs      tally
	baseRSS   int64 // the gateway's before
	peakRSS   int64 // its largest resident set sampled while they ran
	wall      time.Duration
	cpu       time.Duration // the gateway's CPU over the whole hold (opening, relaying, ending them)
	perRampS  int           // streams opened per second
	heapFile  string        // the gateway's heap profile with them open
	// The upstream: "HTTP/2 over TLS" (as providers serve; the gateway is
	// restarted to reach it) or "HTTP/1.1" (the other sections' mock).
	upstream                  string
	upConns, upH2, upRequests int64 // connections the upstream accepted, requests over HTTP/2, all requests
}

// holdStreams opens n streaming requests through t over a ramp of a few
// seconds, against an upstream that streams slowly, reads every one to its
// end and samples the gateway's resident memory meanwhile.
// Once every stream is open, the gateway's heap profile is saved under dir.
//
// With overTLS the slow upstream is served over TLS with HTTP/2, as
// providers' APIs are, and the gateway is restarted to call it there (t
// then changes address); otherwise the sections' HTTP/1.1 mock serves them.
func holdStreams(ctx context.Context, env *environment, t target, n int, dir string, overTLS bool) (res heldStreams) {
	res = heldStreams{requested: n, perRampS: 2000, upstream: "HTTP/1.1"}
	_ = os.MkdirAll(dir, 0o755) // also when the profile phase did not run
	slow := mockupstream.New(mockupstream.Config{TokensPerSecond: slowPace})
	// Each stream is a connection to the gateway, in it and in this
	// process; over HTTP/1.1 also one from the gateway to the mock, in both
	// (over HTTP/2 a connection carries up to 250 streams).
	perStream := 2
	if overTLS {
		up, err := env.restartOverTLS(ctx, slow, dir)
		if err != nil {
			res.errs.add(failure{kind: "restart the gateway over TLS", detail: err.Error()})
			return res
		}
		defer up.srv.Close()
		defer func() { res.upConns, res.upH2, res.upRequests = up.conns.Load(), up.h2.Load(), up.requests.Load() }()
		t.url, t.serving = env.gateway.url, env.gatewayProc
		res.upstream, perStream = "HTTP/2 over TLS", 1
	} else {
		env.upstream.set(slow)
		defer env.upstream.set(fastUpstream())
	}
	// Hold what the open-file limit lets both processes keep, with room for
	// everything else.
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && int(lim.Cur) < perStream*n+1000 {
		n, res.fdLimit = (int(lim.Cur)-1000)/perStream, int(lim.Cur)
	}
	res.n = n
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: n,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	body := chatBody(t.model, true, 0)
	res.baseRSS, _ = t.serving.memory()

	var held atomic.Int64
	stop := make(chan struct{})
	heapSaved := false
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				rss, _ := t.serving.memory()
				res.peakRSS = max(res.peakRSS, rss)
				res.maxHeld = max(res.maxHeld, held.Load())
				if !heapSaved && held.Load() >= int64(n)*9/10 {
					heapSaved = true
					res.heapFile = filepath.Join(dir, time.Now().UTC().Format("20060102T150405Z")+"-held-heap.pprof")
					if err := fetchTo(ctx, "http://"+env.debugAddr+"/debug/pprof/heap", res.heapFile); err != nil {
						res.heapFile = ""
					}
					_ = fetchTo(ctx, "http://"+env.debugAddr+"/debug/pprof/goroutine?debug=1", strings.TrimSuffix(res.heapFile, "heap.pprof")+"goroutines.txt")
					_ = fetchTo(ctx, strings.TrimSuffix(t.url, "/v1/chat/completions")+"/metrics", strings.TrimSuffix(res.heapFile, "heap.pprof")+"metrics.txt")
				}
			}
		}
	}()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	fmt.Fprintf(os.Stderr, "bench: holding %d slow streams\n", n)
	start, cpu0 := time.Now(), t.serving.cpu()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(res.perRampS))); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			err := oneHeld(ctx, client, t, body, &held)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.errs.add(err)
				return
			}
			res.ok++
		})
	}
	wg.Wait()
	res.wall, res.cpu = time.Since(start), t.serving.cpu()-cpu0
	close(stop)
	<-sampled
	gatewayCalls.Add(int64(n))
	return res
}

// restartOverTLS serves h over TLS (HTTP/2) on a fresh loopback port, and
// restarts the gateway (stopping it as in production: it drains and
// flushes its records) with the mock provider there, trusting only the
// certificate made for it, through SSL_CERT_FILE. The targets then point at
// the new process; the keys are the database's, unchanged.
func (e *environment) restartOverTLS(ctx context.Context, h http.Handler, dir string) (*tlsUpstream, error) {
	cert, caPath, err := loopbackCert(dir)
	if err != nil {
		return nil, fmt.Errorf("make the upstream certificate: %w", err)
	}
	up, err := serveTLS(h, cert)
	if err != nil {
		return nil, err
	}
	if err := e.gatewayProc.stop(60 * time.Second); err != nil {
		up.srv.Close()
		return nil, fmt.Errorf("stop the gateway: %w", err)
	}
	fmt.Fprintln(os.Stderr, "bench: restarting the gateway with the mock provider at https://"+up.addr)
	proc, debug, err := startGateway(ctx, "gateway-tls", e.binary, e.dataDir, e.db.url, "https://"+up.addr, e.key, "SSL_CERT_FILE="+caPath)
	if err != nil {
		up.srv.Close()
		return nil, err
	}
	time.Sleep(time.Second) // let start-up garbage be collected, as for the first
	e.gatewayProc, e.debugAddr = proc, debug
	for _, t := range []*target{&e.gateway, &e.guarded} {
		t.url, t.serving = "http://"+proc.addr+"/v1/chat/completions", proc
	}
	return up, nil
}

// oneHeld is one slow stream: held counts it from its headers to its end.
func oneHeld(ctx context.Context, client *http.Client, t target, body []byte, held *atomic.Int64) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+t.token)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return failure{kind: "transport error", detail: err.Error()}
	}
	defer resp.Body.Close()
	held.Add(1)
	defer held.Add(-1)
	if resp.StatusCode != http.StatusOK {
		return failure{kind: fmt.Sprintf("HTTP %d", resp.StatusCode)}
	}
	_, err = readStream(resp, start)
	return err
}
