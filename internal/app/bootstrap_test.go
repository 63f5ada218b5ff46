package app

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/config"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/pgtest"
	"github.com/perpetuo/perpetuo/internal/store"
)

// TestBootstrapPrintsOnlyWhatThisRunCreated: a key is shown (and saved)
// only by the run that created it; a later PERPETUO_BOOTSTRAP_KEY the
// database does not know is warned about, never advertised.
func TestBootstrapPrintsOnlyWhatThisRunCreated(t *testing.T) {
	t.Parallel()
	st := store.New(pgtest.New(t))
	dir := t.TempDir()
	run := func(envKey string) (key, console, logs string) {
		var out, lg bytes.Buffer
		log := slog.New(slog.NewTextHandler(&lg, nil))
		k, err := bootstrap(context.Background(), st, config.Config{DataDir: dir, BootstrapKey: envKey}, log, &out)
		require.NoError(t, err)
		return k, out.String(), lg.String()
	}

	key, console, _ := run("")
	require.True(t, keys.WellFormed(key))
	require.Contains(t, console, key, "shown once")
	saved, err := os.ReadFile(filepath.Join(dir, KeyFileName))
	require.NoError(t, err)
	require.Equal(t, key, strings.TrimSpace(string(saved)), "and saved for the first request")
	info, err := os.Stat(filepath.Join(dir, KeyFileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	key2, console, logs := run("")
	require.Empty(t, key2, "a later run prints no key")
	require.Empty(t, console)
	require.NotContains(t, logs, key)

	late := keys.Generate()
	key3, console, logs := run(late)
	require.Empty(t, key3, "an ignored key is never advertised")
	require.NotContains(t, console, late)
	require.Contains(t, logs, "PERPETUO_BOOTSTRAP_KEY is ignored")
	require.NotContains(t, logs, late)
}

// TestBootstrapKeyFromTheEnvironment: a key given on the first run is
// created, and on later runs neither printed nor warned about.
func TestBootstrapKeyFromTheEnvironment(t *testing.T) {
	t.Parallel()
	st := store.New(pgtest.New(t))
	dir := t.TempDir()
	given := keys.Generate()
	var out, lg bytes.Buffer
	log := slog.New(slog.NewTextHandler(&lg, nil))
	k, err := bootstrap(context.Background(), st, config.Config{DataDir: dir, BootstrapKey: given}, log, &out)
	require.NoError(t, err)
	require.Equal(t, given, k, "created by this run: the banner may use it")
	k, err = bootstrap(context.Background(), st, config.Config{DataDir: dir, BootstrapKey: given}, log, &out)
	require.NoError(t, err)
	require.Empty(t, k, "not printed on later runs")
	require.NotContains(t, lg.String(), "ignored")
}
