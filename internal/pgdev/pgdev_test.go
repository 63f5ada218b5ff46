package pgdev

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// testLogger writes the package's log to the test output.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// reachableDir returns a fresh directory the postgres user can traverse
// (t.TempDir is 0700, so a root test would always take the fallback path).
func reachableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgdev-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "cluster")
}

// cleanup stops the given clusters, then removes their directories.
func cleanup(t *testing.T, clusters ...*Cluster) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, c := range clusters {
			if c != nil {
				if err := c.Stop(ctx); err != nil {
					t.Errorf("stop: %v", err)
				}
			}
		}
		for _, c := range clusters {
			if c != nil {
				if err := os.RemoveAll(c.root); err != nil {
					t.Errorf("remove cluster: %v", err)
				}
			}
		}
	})
}

func query(t *testing.T, ctx context.Context, url, sql string, args ...any) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var out string
	require.NoError(t, conn.QueryRow(ctx, sql, args...).Scan(&out))
	return out
}

func execSQL(t *testing.T, ctx context.Context, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err)
}

func listenOn(port int) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort(listenHost, strconv.Itoa(port)))
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := reachableDir(t)
	log := testLogger(t)

	begin := time.Now()
	first, err := Start(ctx, dir, log)
	require.NoError(t, err)
	t.Logf("first start (initdb + start): %v", time.Since(begin))
	cleanup(t, first)
	require.True(t, first.owned)
	if os.Geteuid() == 0 {
		require.Equal(t, dir, first.root, "a reachable directory holds the cluster itself")
	}
	require.Contains(t, first.URL("app"), "127.0.0.1")
	require.Equal(t, "UTF8", query(t, ctx, first.URL("postgres"), "SHOW server_encoding"))
	require.Equal(t, "200", query(t, ctx, first.URL("postgres"), "SHOW max_connections"))
	require.Equal(t, "off", query(t, ctx, first.URL("postgres"), "SHOW synchronous_commit"))
	require.Equal(t, "on", query(t, ctx, first.URL("postgres"), "SHOW fsync"))
	require.Equal(t, "", query(t, ctx, first.URL("postgres"), "SHOW unix_socket_directories"))

	require.NoError(t, first.EnsureDatabase(ctx, "app"))
	require.NoError(t, first.EnsureDatabase(ctx, "app"), "EnsureDatabase is idempotent")
	require.NoError(t, first.EnsureDatabase(ctx, `odd "name"`))
	execSQL(t, ctx, first.URL("app"), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('persisted')")

	// A second Start on the same directory reuses the running server, and
	// its Stop leaves that server alone.
	begin = time.Now()
	second, err := Start(ctx, dir, log)
	require.NoError(t, err)
	t.Logf("reuse of a running server: %v", time.Since(begin))
	require.False(t, second.owned)
	require.Equal(t, first.URL("app"), second.URL("app"))
	require.NoError(t, second.Stop(ctx))
	require.Equal(t, "persisted", query(t, ctx, first.URL("app"), "SELECT v FROM kept"))

	// Stopping the owner stops the server.
	require.NoError(t, first.Stop(ctx))
	_, err = pgx.Connect(ctx, first.URL("app"))
	require.Error(t, err, "server still accepts connections after Stop")
	require.NoError(t, first.Stop(ctx), "a second Stop is a no-op")

	// Starting again reuses the data directory and the port.
	begin = time.Now()
	third, err := Start(ctx, dir, log)
	require.NoError(t, err)
	t.Logf("restart of a stopped cluster: %v", time.Since(begin))
	cleanup(t, third)
	require.True(t, third.owned)
	require.Equal(t, first.URL("app"), third.URL("app"))
	require.Equal(t, "persisted", query(t, ctx, third.URL("app"), "SELECT v FROM kept"))
	require.NoError(t, third.EnsureDatabase(ctx, "app"))
}

func TestConcurrentStart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := reachableDir(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	const n = 4
	clusters := make([]*Cluster, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { clusters[i], errs[i] = Start(ctx, dir, log) })
	}
	wg.Wait()
	cleanup(t, clusters...)
	owners := 0
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, clusters[0].URL("x"), clusters[i].URL("x"))
		if clusters[i].owned {
			owners++
		}
	}
	require.Equal(t, 1, owners, "exactly one Start launches the server")
	for i := range n {
		require.NoError(t, clusters[i].EnsureDatabase(ctx, "shared"))
	}
}

func TestPortTakenMovesToNewPort(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := reachableDir(t)
	log := testLogger(t)

	c, err := Start(ctx, dir, log)
	require.NoError(t, err)
	cleanup(t, c)
	oldPort := c.port
	require.NoError(t, c.Stop(ctx))

	// Someone else takes the port while the cluster is down.
	l, err := listenOn(oldPort)
	require.NoError(t, err)
	defer l.Close()

	c2, err := Start(ctx, dir, log)
	require.NoError(t, err)
	cleanup(t, c2)
	require.NotEqual(t, oldPort, c2.port)
	require.Equal(t, c2.port, readPort(filepath.Join(c2.root, "port")), "new port is persisted")
	require.Equal(t, "1", query(t, ctx, c2.URL("postgres"), "SELECT '1'"))
}

func TestRootFallbackForUnreachableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root relocates clusters the postgres user cannot reach")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// t.TempDir is mode 0700 and owned by root: postgres cannot traverse it.
	dir := filepath.Join(t.TempDir(), "cluster")
	c, err := Start(ctx, dir, testLogger(t))
	require.NoError(t, err)
	cleanup(t, c)
	require.Equal(t, stableFallbackDir(dir), c.root)
	require.True(t, strings.HasPrefix(c.root, "/var/tmp/perpetuo-pg-"))
	require.Len(t, filepath.Base(c.root), len("perpetuo-pg-")+12)
	require.FileExists(t, filepath.Join(dir, ".lock"))
	require.NoError(t, c.EnsureDatabase(ctx, "app"))
}

func TestStableFallbackDir(t *testing.T) {
	a := stableFallbackDir("/root/work/.data/test-postgres")
	require.Equal(t, a, stableFallbackDir("/root/work/.data/test-postgres"))
	require.NotEqual(t, a, stableFallbackDir("/root/other/.data/test-postgres"))
}

func TestCompareVersions(t *testing.T) {
	require.Positive(t, compareVersions("15", "9.6"))
	require.Negative(t, compareVersions("9.6", "10"))
	require.Zero(t, compareVersions("16", "16"))
}
