package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/budget"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/secrets"
	"github.com/perpetuo/perpetuo/internal/store"
)

// These tests run the real binary, because what they check (a SIGKILL, a
// SIGTERM, the process exit status) cannot happen to an in-process App.

// TestProcessKilledMidStreamIsResolvedByAnotherReplica: a replica killed
// with streams open leaves ids its clients hold and a budget lease no one
// will hand back; another replica takes it for dead, records the streams as
// interrupted and charges the lease in full (the documented worst case:
// only the dead replica knew what its requests cost), and resolves the
// streams' ids once their start markers were written.
func TestProcessKilledMidStreamIsResolvedByAnotherReplica(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	bin := buildPerpetuo(t)
	owner := keys.Generate()
	env := serveEnv(pool, t.TempDir(), owner)
	p := startServe(t, bin, env)
	keyID, key := p.newKey(owner, `{"name":"k","limit":1}`)

	completed := decimal.Zero
	for range 2 {
		status, _, doc := p.call("POST", "/v1/chat/completions", key, chatBody)
		require.Equal(t, 200, status, "%v", doc)
		completed = completed.Add(costOf(t, doc))
	}
	// Consumed spend reaches the ledger with the next flush.
	within(t, 10*time.Second, func() bool { s, _ := keySpend(t, pool, keyID); return s.Equal(completed) },
		"the responses' spend was never flushed")

	streams := make([]string, 5)
	for i := range streams {
		streams[i], _ = p.openStream(key, streamBody(600)) // 20 s of echo
	}
	// A stream's id resolves after a crash once its start marker is
	// written (in the background, with the records: a stream started
	// within one flush of the crash answers 404).
	within(t, 10*time.Second, func() bool { return count(t, pool, `SELECT count(*) FROM generation_starts`) == len(streams) },
		"the streams' start markers were never written")
	// What the sweep must charge: what was spent plus the whole lease.
	var charged decimal.Decimal
	require.NoError(t, pool.QueryRow(context.Background(), `
		SELECT (s.spent + coalesce((SELECT sum(l.amount) FROM spend_leases l
		        WHERE l.scope = 'key' AND l.scope_id = s.scope_id AND l.period_start = s.period_start), 0))::text
		FROM spend s WHERE s.scope = 'key' AND s.scope_id = $1`, keyID).Scan(&charged))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM spend_leases`), "the streams run on one lease")

	require.NoError(t, p.cmd.Process.Kill())
	<-p.exited

	srv := startReplica(t, pool)
	// One sweep records the streams as interrupted, then charges the lease.
	within(t, 30*time.Second, func() bool { return count(t, pool, `SELECT count(*) FROM spend_leases`) == 0 },
		"the dead replica's lease was never swept")
	spent, reserved := keySpend(t, pool, keyID)
	require.True(t, reserved.IsZero(), "reserved %s", reserved)
	require.True(t, spent.Equal(charged), "spent %s, want %s (spent before the kill + the lease)", spent, charged)
	require.True(t, spent.GreaterThan(completed), "the streams in flight are charged: %s", spent)
	require.True(t, spent.LessThanOrEqual(decimal.NewFromInt(1)), "never past the limit: %s", spent)
	var lost []string
	for _, id := range streams {
		status, _, raw := send(t, srv.URL, "GET", "/v1/generation?id="+id, key, "")
		if status == http.StatusNotFound {
			lost = append(lost, id)
			continue
		}
		require.Equal(t, http.StatusOK, status, "%s", raw)
		var doc map[string]any
		require.NoError(t, json.Unmarshal(raw, &doc))
		g := data(doc)
		require.Equal(t, "interrupted", g["error_type"], "%v", g)
		require.Equal(t, "error", g["finish_reason"], "%v", g)
		require.Equal(t, true, g["streamed"], "%v", g)
		require.Equal(t, "mock/echo", g["requested_model"], "%v", g)
	}
	assert.Empty(t, lost, "ids handed to clients that still answer 404 after the sweep: no start marker of theirs reached generation_starts")

	// A replica restarted on the same database and data directory serves.
	again := startServe(t, bin, env)
	status, _, doc := again.call("POST", "/v1/chat/completions", key, chatBody)
	require.Equal(t, 200, status, "%v", doc)
	require.NoError(t, again.cmd.Process.Signal(syscall.SIGTERM))
	again.requireExit()
}

// TestProcessSignalShutdownKeepsRecords: on SIGTERM readiness goes off
// first, the running stream gets to finish, every record is written, the
// replica retires and the process exits 0.
func TestProcessSignalShutdownKeepsRecords(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	bin := buildPerpetuo(t)
	owner := keys.Generate()
	env := serveEnv(pool, t.TempDir(), owner)
	env["PERPETUO_DRAIN_DELAY"] = "200ms"
	p := startServe(t, bin, env)
	keyID, key := p.newKey(owner, `{"name":"k","limit":1}`)

	streamID, stream := p.openStream(key, streamBody(90)) // 3 s of echo
	ids := []string{streamID}
	for range 3 {
		status, hdr, doc := p.call("POST", "/v1/chat/completions", key, chatBody)
		require.Equal(t, 200, status, "%v", doc)
		ids = append(ids, hdr.Get("X-Generation-Id"))
	}

	signalled := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	p.requireDraining()
	rest, err := io.ReadAll(stream)
	require.NoError(t, err, "the stream must finish within the grace period")
	require.Greater(t, time.Since(signalled), time.Second, "the stream was still running at the signal")
	require.Contains(t, string(rest), "data: [DONE]")
	require.NotContains(t, string(rest), `"error"`)
	p.requireExit()

	require.Equal(t, len(ids), count(t, pool, `SELECT count(*) FROM generations WHERE id = ANY($1)`, ids), "records %v", ids)
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM generations
		WHERE id = $1 AND streamed AND NOT cancelled AND error_type IS NULL`, streamID), "the stream's record says it ended normally")
	require.Zero(t, count(t, pool, `SELECT count(*) FROM replicas`), "a clean stop retires the replica")
	require.Zero(t, count(t, pool, `SELECT count(*) FROM generation_starts`))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM spend_leases`), "a clean stop hands its leases back")
	_, reserved := keySpend(t, pool, keyID)
	require.True(t, reserved.IsZero(), "reserved %s", reserved)
}

// proc is a `perpetuo serve` child process on a loopback port.
type proc struct {
	t      *testing.T
	url    string
	cmd    *exec.Cmd
	client *http.Client
	out    *bytes.Buffer // read only once exited: Wait has copied everything by then
	exited chan struct{} // closed when the process has exited; err is set then
	err    error
}

// buildPerpetuo builds the binary from the module root into a temporary directory.
func buildPerpetuo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "perpetuo")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/perpetuo")
	cmd.Dir = filepath.Join("..", "..") // tests run in their package's directory
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// serveEnv configures a demo gateway on the test's database.
func serveEnv(pool *pgxpool.Pool, dataDir, bootstrapKey string) map[string]string {
	return map[string]string{
		"DATABASE_URL": pool.Config().ConnString(), "PERPETUO_DATA_DIR": dataDir,
		"PERPETUO_BOOTSTRAP_KEY": bootstrapKey, "PERPETUO_DEMO": "1", "PERPETUO_DRAIN_DELAY": "0",
	}
}

// startServe runs `perpetuo serve` with env (and nothing inherited but
// PATH, so a developer's DATABASE_URL or provider keys stay out) and waits
// until it is ready. It is killed at the end of the test if still running,
// and its output is logged if the test failed.
func startServe(t *testing.T, bin string, env map[string]string) *proc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PERPETUO_LISTEN=" + addr}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{t: t, url: "http://" + addr, cmd: cmd, out: &bytes.Buffer{}, exited: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{}}}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	require.NoError(t, cmd.Start())
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // os.ErrProcessDone when it has exited already
		<-p.exited
		p.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("perpetuo serve on %s (%v):\n%s", addr, p.err, p.out)
		}
	})
	within(t, 30*time.Second, func() bool {
		select {
		case <-p.exited:
			require.FailNow(t, "perpetuo serve exited before it was ready", "%v", p.err)
		default:
		}
		return p.readyz() == http.StatusOK
	}, "perpetuo serve not ready after 30s")
	return p
}

// readyz returns the status of GET /readyz, 0 when nothing answers.
func (p *proc) readyz() int {
	resp, err := p.client.Get(p.url + "/readyz")
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// call sends a JSON request with key and decodes the JSON answer.
func (p *proc) call(method, path, key, body string) (int, http.Header, map[string]any) {
	p.t.Helper()
	resp := p.do(method, path, key, body)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	var doc map[string]any
	require.NoError(p.t, json.Unmarshal(raw, &doc), "body: %s", raw)
	return resp.StatusCode, resp.Header, doc
}

func (p *proc) do(method, path, key, body string) *http.Response {
	p.t.Helper()
	req, err := http.NewRequest(method, p.url+path, strings.NewReader(body))
	require.NoError(p.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := p.client.Do(req)
	require.NoError(p.t, err)
	return resp
}

// newKey creates a key in the owner's workspace and returns its id and plaintext.
func (p *proc) newKey(owner, body string) (string, string) {
	p.t.Helper()
	status, _, doc := p.call("GET", "/v1/key", owner, "")
	require.Equal(p.t, 200, status, "%v", doc)
	ws := data(doc)["workspace_id"].(string)
	status, _, doc = p.call("POST", "/v1/workspaces/"+ws+"/keys", owner, body)
	require.Equal(p.t, 201, status, "%v", doc)
	return data(doc)["id"].(string), data(doc)["key"].(string)
}

// requireDraining polls /readyz right after the signal: it must answer 503
// before the listener closes.
func (p *proc) requireDraining() {
	p.t.Helper()
	within(p.t, 2*time.Second, func() bool {
		status := p.readyz()
		require.NotZero(p.t, status, "the listener closed before /readyz said 503")
		return status == http.StatusServiceUnavailable
	}, "/readyz never answered 503 after SIGTERM")
}

// requireExit waits for the process to exit and requires status 0.
func (p *proc) requireExit() {
	p.t.Helper()
	select {
	case <-p.exited:
		require.NoError(p.t, p.err, "exit status")
	case <-time.After(45 * time.Second): // grace 30s + flush
		p.t.Fatal("perpetuo serve did not exit after SIGTERM")
	}
}

// openStream starts a streaming request and returns its generation id and
// the stream, once the first chunk has arrived.
func (p *proc) openStream(key, body string) (string, *bufio.Reader) {
	p.t.Helper()
	resp := p.do("POST", "/v1/chat/completions", key, body)
	p.t.Cleanup(func() { _ = resp.Body.Close() })
	require.Equal(p.t, 200, resp.StatusCode)
	id, r := resp.Header.Get("X-Generation-Id"), bufio.NewReader(resp.Body)
	require.NotEmpty(p.t, id)
	for {
		line, err := r.ReadString('\n')
		require.NoError(p.t, err)
		if strings.HasPrefix(line, "data: ") {
			return id, r
		}
	}
}

// streamBody asks mock/echo for a stream of about words tokens (30 a second).
func streamBody(words int) string {
	msg := strings.TrimSpace(strings.Repeat("tick ", words))
	return `{"model":"mock/echo","stream":true,"max_tokens":2000,"messages":[{"role":"user","content":"` + msg + `"}]}`
}

// startReplica runs an in-process replica on pool with liveness timings
// short enough for a test; DeadAfter exceeds the binary's 5s heartbeat.
func startReplica(t *testing.T, pool *pgxpool.Pool) *httptest.Server {
	t.Helper()
	cat, err := catalog.Load("")
	require.NoError(t, err)
	mk, err := secrets.GenerateKey()
	require.NoError(t, err)
	logs := &bytes.Buffer{} // read only once the replica is closed
	a, err := New(Options{Pool: pool, Catalog: cat, Operator: routing.Set{}, Keyring: secrets.NewKeyring(mk),
		Log: slog.New(slog.NewTextHandler(logs, nil)), HeartbeatEvery: 200 * time.Millisecond,
		DeadAfter: 7 * time.Second, SweepEvery: 300 * time.Millisecond})
	require.NoError(t, err)
	srv := httptest.NewServer(specGuard(t, a.Handler))
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, a.Close(context.Background()))
		if t.Failed() {
			t.Logf("in-process replica:\n%s", logs)
		}
	})
	return srv
}

// within polls cond on the test goroutine (so cond may use require) until it holds.
func within(t *testing.T, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), msg)
	}
}

// keySpend reads the key's lifetime ledger.
func keySpend(t *testing.T, pool *pgxpool.Pool, keyID string) (spent, reserved decimal.Decimal) {
	t.Helper()
	spent, reserved, err := store.New(pool).Spend(context.Background(), "key", keyID, budget.PeriodStart("", time.Now()))
	require.NoError(t, err)
	return spent, reserved
}

func count(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}
