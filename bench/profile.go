package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// profiles are the gateway's CPU and allocation profiles over the same
// seconds of load, saved to files, with their top entries.
type profiles struct {
	cpuFile, allocFile string
	cpuTop, allocTop   []string
	requests           int
	errs               tally
}

// takeProfiles loads t at concurrency 16 for dur while the gateway's
// profiler records its CPU and its allocations, and saves both under dir.
func takeProfiles(ctx context.Context, env *environment, t target, dir string, dur time.Duration) (profiles, error) {
	var p profiles
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return p, err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	p.cpuFile = filepath.Join(dir, stamp+"-cpu.pprof")
	p.allocFile = filepath.Join(dir, stamp+"-allocs.pprof")
	secs := int(dur / time.Second)
	fetched := make(chan error, 2)
	for _, f := range []struct{ path, file string }{
		{fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), p.cpuFile},
		{fmt.Sprintf("/debug/pprof/allocs?seconds=%d", secs), p.allocFile},
	} {
		go func() { fetched <- fetchTo(ctx, "http://"+env.debugAddr+f.path, f.file) }()
	}
	l := newLoader(16, 30*time.Second)
	defer l.close()
	fmt.Fprintf(os.Stderr, "bench: profiling the gateway for %s\n", dur)
	for began := time.Now(); time.Since(began) < dur+500*time.Millisecond && ctx.Err() == nil; {
		b := l.run(ctx, t, false, 500, 0)
		gatewayCalls.Add(int64(b.sent))
		p.requests += b.sent
		p.errs.merge(b.errs)
	}
	for range 2 {
		if err := <-fetched; err != nil {
			return p, err
		}
	}
	var err error
	if p.cpuTop, err = top(p.cpuFile); err != nil {
		return p, err
	}
	p.allocTop, err = top(p.allocFile, "-sample_index=alloc_space")
	return p, err
}

// fetchTo saves what url answers to file.
func fetchTo(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: HTTP %d (does the gateway binary support PERPETUO_DEBUG_LISTEN?)", url, resp.StatusCode)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// top is the first entries of `go tool pprof -top` on file, by flat value.
func top(file string, flags ...string) ([]string, error) {
	args := append([]string{"tool", "pprof", "-top", "-nodecount=5"}, flags...)
	out, err := exec.Command("go", append(args, file)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go tool pprof %s: %w", file, err)
	}
	var lines []string
	seen := false
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.Contains(l, "flat%") && strings.Contains(l, "cum%"):
			seen = true
		case seen && strings.TrimSpace(l) != "":
			lines = append(lines, strings.TrimRight(l, " "))
		}
	}
	return lines, nil
}
