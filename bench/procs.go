package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a process under measurement: the gateway binary or the bare
// reverse proxy (this program re-executed with -serve-proxy).
type child struct {
	name string
	cmd  *exec.Cmd
	addr string // host:port it serves on
	log  string // where its stdout and stderr go
	done chan error
}

// startGateway runs the gateway binary with only the settings it needs:
// the bench database, the mock upstream as the operator's provider "mock",
// the bootstrap key, loopback listeners for the API and the profiler.
func startGateway(ctx context.Context, name, binary, dataDir, databaseURL, upstreamURL, key string, extra ...string) (*child, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	debug, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + databaseURL,
		"PERPETUO_LISTEN=" + addr,
		"PERPETUO_DEBUG_LISTEN=" + debug,
		"PERPETUO_DATA_DIR=" + filepath.Join(dataDir, "gateway"),
		"PERPETUO_BOOTSTRAP_KEY=" + key,
		"PERPETUO_DEMO=0",
		"PERPETUO_DRAIN_DELAY=0",
		"PERPETUO_PROVIDER_MOCK_BASE_URL=" + upstreamURL + "/v1",
		"PERPETUO_PROVIDER_MOCK_API_KEY=bench",
	}
	env = append(env, extra...)
	c, err := startChild(ctx, name, filepath.Join(dataDir, name+".log"), env, binary, "serve")
	if err != nil {
		return nil, "", err
	}
	c.addr = addr
	if err := c.waitReady(ctx, "http://"+addr+"/readyz", 60*time.Second); err != nil {
		c.stop(5 * time.Second)
		return nil, "", err
	}
	return c, debug, nil
}

// startProxy re-executes this program as the bare reverse proxy in front of
// upstream; it prints its address on its first line of output.
func startProxy(ctx context.Context, dataDir, upstream string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	env := []string{"PATH=" + os.Getenv("PATH")}
	c, err := startChild(ctx, "proxy", filepath.Join(dataDir, "proxy.log"), env, self, "-serve-proxy", "http://"+upstream, "-listen", addr)
	if err != nil {
		return nil, err
	}
	c.addr = addr
	if err := c.waitReady(ctx, "http://"+addr+"/bench-proxy-ready", 10*time.Second); err != nil {
		c.stop(5 * time.Second)
		return nil, err
	}
	return c, nil
}

func startChild(ctx context.Context, name, logPath string, env []string, bin string, args ...string) (*child, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the bench
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait(); logf.Close() }()
	return c, nil
}

// waitReady polls url until it answers 200, the process exits or limit
// passes.
func (c *child) waitReady(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("%s exited while starting (%v); see %s:\n%s", c.name, err, c.log, tail(c.log))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("%s not ready after %s; see %s", c.name, limit, c.log)
}

// stop sends SIGTERM and waits up to limit for a clean exit, then kills.
func (c *child) stop(limit time.Duration) error {
	if c == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			return fmt.Errorf("%s exited with %v; see %s:\n%s", c.name, err, c.log, tail(c.log))
		}
		return nil
	case <-time.After(limit):
		_ = c.cmd.Process.Kill()
		return fmt.Errorf("%s did not stop within %s; killed", c.name, limit)
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// cpu is the process's user + system CPU time so far, from /proc (the
// kernel counts it in ticks of 10ms; rounds are long enough for that).
func (c *child) cpu() time.Duration {
	if c == nil {
		return 0
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.pid()))
	if err != nil {
		return 0
	}
	return statCPU(raw)
}

// statCPU reads utime + stime from a /proc/<pid>/stat line.
func statCPU(raw []byte) time.Duration { self, _ := statTimes(raw); return self }

// statTimes reads a /proc/<pid>/stat line's CPU time: the process's own
// (utime + stime) and that of its reaped children (cutime + cstime).
func statTimes(raw []byte) (self, children time.Duration) {
	end := bytes.LastIndexByte(raw, ')')
	if end < 0 {
		return 0, 0
	}
	f := strings.Fields(string(raw[end+1:]))
	if len(f) < 15 {
		return 0, 0
	}
	// After the name: state is field 3 of stat, utime 14, stime 15,
	// cutime 16 and cstime 17, in ticks of 10ms (USER_HZ is 100 on Linux).
	ticks := func(i int) time.Duration {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		return time.Duration(v) * 10 * time.Millisecond
	}
	return ticks(11) + ticks(12), ticks(13) + ticks(14)
}

// memory is the process's resident set now and at its peak, in bytes.
func (c *child) memory() (rss, peak int64) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid()))
	if err != nil {
		return 0, 0
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak
}

// tail is the end of a log file, for an error message.
func tail(path string) string {
	raw, _ := os.ReadFile(path)
	if len(raw) > 2000 {
		raw = raw[len(raw)-2000:]
	}
	return string(raw)
}

// freeAddr is a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// serveProxy is the floor: net/http's httputil.ReverseProxy in front of
// upstream, doing nothing else (no auth, no parsing, no logging), with an
// idle pool per host as large as the gateway's, streams flushed at once, and
// the request body read before the call.
func serveProxy(upstream, listen string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// The body is read before the call, as the gateway does: net/http
			// closes an inbound body once the response headers are written,
			// and a transport still checking the body's end then drops the
			// upstream connection mid-stream (golang/go#40747).
			if body, err := io.ReadAll(r.In.Body); err == nil {
				r.Out.Body, r.Out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			}
		},
		Transport:     tr,
		FlushInterval: -1,
		ErrorLog:      nil,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/bench-proxy-ready", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle("/", rp)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signalNotify(sig)
		<-sig
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
