package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestIsolation runs two parallel tests that must see different, fully
// migrated databases and none of each other's writes.
func TestIsolation(t *testing.T) {
	var (
		mu    sync.Mutex
		names = map[string]string{}
		ready sync.WaitGroup
	)
	ready.Add(2)
	for _, sub := range []string{"a", "b"} {
		t.Run(sub, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pool := New(t)

			var db string
			require.NoError(t, pool.QueryRow(ctx, "SELECT current_database()").Scan(&db))
			mu.Lock()
			names[sub] = db
			mu.Unlock()

			var table *string
			require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass('public.generations')::text").Scan(&table))
			require.NotNil(t, table, "the generations table exists")

			_, err := pool.Exec(ctx, "INSERT INTO workspaces (id, name) VALUES ($1, $2)", "ws_"+sub, "workspace "+sub)
			require.NoError(t, err)

			// Both have written before either looks.
			ready.Done()
			ready.Wait()

			var ids []string
			rows, err := pool.Query(ctx, "SELECT id FROM workspaces ORDER BY id")
			require.NoError(t, err)
			ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			require.Equal(t, []string{"ws_" + sub}, ids, "only this test's write is visible")
		})
	}
	t.Cleanup(func() {
		require.Len(t, names, 2)
		require.NotEqual(t, names["a"], names["b"], "each test has its own database")
	})
}

func TestURL(t *testing.T) {
	ctx := context.Background()
	u := URL(t)
	conn, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var version int
	var dirty bool
	require.NoError(t, conn.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations").Scan(&version, &dirty))
	require.GreaterOrEqual(t, version, 1)
	require.False(t, dirty)
	require.NotEqual(t, u, URL(t), "every call is a new database")
}

func TestManagedClusterInRepo(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL selects the server")
	}
	root, err := repoRoot()
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "go.mod"))
	_ = URL(t)
	require.FileExists(t, filepath.Join(root, ".data", "test-postgres", ".lock"))
}

func TestConfigFromURL(t *testing.T) {
	conf, err := configFromURL("postgresql://us%40er:p%3Ass@db.example:6543/app?sslmode=require")
	require.NoError(t, err)
	require.Equal(t, "db.example", conf.Host)
	require.Equal(t, "6543", conf.Port)
	require.Equal(t, "app", conf.Database)
	require.Equal(t, "sslmode=require", conf.Options)
	require.Equal(t, "postgres://us%40er:p%3Ass@db.example:6543/app?sslmode=require", conf.URL())

	conf, err = configFromURL("postgres://localhost")
	require.NoError(t, err)
	require.Equal(t, "postgres://postgres:@localhost:5432/postgres?sslmode=disable", conf.URL())

	conf, err = configFromURL("postgres://u@[::1]:5433/x")
	require.NoError(t, err)
	require.Equal(t, "postgres://u:@[::1]:5433/x?sslmode=disable", conf.URL())

	_, err = configFromURL("mysql://localhost/x")
	require.Error(t, err)
}
