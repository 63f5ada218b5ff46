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
	perRampS  int    // streams opened per second
	heapFile  string // the gateway's heap profile with them open
}

// holdStreams opens n streaming requests through t over a ramp of a few
// seconds, against an upstream that streams slowly, reads every one to its
// end and samples the gateway's resident memory meanwhile.
// Once every stream is open, the gateway's heap profile is saved under dir.
func holdStreams(ctx context.Context, env *environment, t target, n int, dir string) heldStreams {
	env.upstream.set(mockupstream.New(mockupstream.Config{TokensPerSecond: slowPace}))
	defer env.upstream.set(fastUpstream())
	res := heldStreams{requested: n, perRampS: 2000}
	_ = os.MkdirAll(dir, 0o755) // also when the profile phase did not run
	// Each stream is two connections in the gateway (client, upstream) and
	// two in this process (client, mock): hold what the open-file limit
	// lets both keep, with room for everything else.
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && int(lim.Cur) < 2*n+1000 {
		n, res.fdLimit = (int(lim.Cur)-1000)/2, int(lim.Cur)
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
	start := time.Now()
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
	res.wall = time.Since(start)
	close(stop)
	<-sampled
	gatewayCalls.Add(int64(n))
	return res
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
