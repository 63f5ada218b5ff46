package pgdev

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// identity is the OS user the server binaries run as.
type identity struct {
	cred *syscall.Credential // nil: the current user
	home string
}

// serverIdentity returns the current user, or the postgres system user when
// running as root (PostgreSQL refuses to run as root).
func serverIdentity() (identity, error) {
	if os.Geteuid() != 0 {
		return identity{}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return identity{}, fmt.Errorf("pgdev: running as root, PostgreSQL must run as the postgres system user, which was not found (%w): install the postgresql package (apt-get install postgresql) or set DATABASE_URL", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return identity{}, fmt.Errorf("pgdev: postgres uid %q: %w", u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return identity{}, fmt.Errorf("pgdev: postgres gid %q: %w", u.Gid, err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	return identity{cred: cred, home: u.HomeDir}, nil
}

// command prepares name to run as this identity, with a clean PostgreSQL
// environment (no PG* variables, C locale) and no shell in between.
func (id identity) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "/"
	cmd.WaitDelay = 10 * time.Second
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" ||
			(id.cred != nil && k == "HOME") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C")
	if id.cred != nil {
		if id.home != "" {
			env = append(env, "HOME="+id.home)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: id.cred}
	}
	cmd.Env = env
	return cmd
}

// chown gives path to this identity (no-op for the current user).
func (id identity) chown(path string) error {
	if id.cred == nil {
		return nil
	}
	if err := os.Lchown(path, int(id.cred.Uid), int(id.cred.Gid)); err != nil {
		return fmt.Errorf("pgdev: %w", err)
	}
	return nil
}

// canReach reports whether this identity can traverse into dir (and so
// reach every ancestor of it).
func (id identity) canReach(ctx context.Context, dir string) bool {
	testBin, err := exec.LookPath("test")
	if err != nil {
		return false
	}
	return id.command(ctx, testBin, "-x", dir).Run() == nil
}

// clusterRoot returns the directory that holds the cluster for abs, owned by
// this identity. As root that is abs when postgres can reach it, else a
// stable directory under /var/tmp.
func (id identity) clusterRoot(ctx context.Context, abs string, log *slog.Logger) (string, error) {
	if id.cred == nil {
		return abs, nil
	}
	root := abs
	if !id.canReach(ctx, filepath.Dir(abs)) {
		root = stableFallbackDir(abs)
		err := os.Mkdir(root, 0o700)
		switch {
		case err == nil:
			log.Info("the postgres user cannot reach the cluster directory; keeping the cluster elsewhere", "dir", abs, "cluster", root)
		case errors.Is(err, fs.ErrExist):
			log.Debug("cluster kept outside its directory", "dir", abs, "cluster", root)
		default:
			return "", fmt.Errorf("pgdev: create %s: %w", root, err)
		}
		// /var/tmp is world-writable: refuse anything we would not have made.
		fi, err := os.Lstat(root)
		if err != nil {
			return "", fmt.Errorf("pgdev: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || !ok || (st.Uid != 0 && st.Uid != id.cred.Uid) {
			return "", fmt.Errorf("pgdev: %s is not a directory owned by root or postgres; remove it", root)
		}
	}
	if err := id.chown(root); err != nil {
		return "", err
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return "", fmt.Errorf("pgdev: %w", err)
	}
	return root, nil
}

// installMu keeps one apt-get run per process.
var installMu sync.Mutex

// findBinDir locates the PostgreSQL server binaries, installing the Debian
// package first when they are missing and the current user is root.
func findBinDir(ctx context.Context, log *slog.Logger) (string, error) {
	if dir := searchBinDir(ctx); dir != "" {
		return dir, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("pgdev: PostgreSQL server binaries (initdb, pg_ctl) not found: install the postgresql package (e.g. `sudo apt-get install postgresql`) or set DATABASE_URL to use an existing server")
	}
	installMu.Lock()
	defer installMu.Unlock()
	if dir := searchBinDir(ctx); dir != "" {
		return dir, nil
	}
	if err := aptInstall(ctx, log); err != nil {
		return "", fmt.Errorf("pgdev: PostgreSQL server binaries not found and installing the postgresql package failed (install it yourself or set DATABASE_URL): %w", err)
	}
	if dir := searchBinDir(ctx); dir != "" {
		return dir, nil
	}
	return "", errors.New("pgdev: installed the postgresql package but still found no initdb/pg_ctl: set DATABASE_URL to use an existing server")
}

// searchBinDir returns the directory of initdb/pg_ctl/postgres, or "": from
// pg_config --bindir, else the newest /usr/lib/postgresql/*/bin, else PATH.
func searchBinDir(ctx context.Context) string {
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(cctx, pgConfig, "--bindir").Output()
		cancel()
		if dir := strings.TrimSpace(string(out)); err == nil && hasServerBinaries(dir) {
			return dir
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(matches, func(a, b string) int {
		// newest first
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	for _, dir := range matches {
		if hasServerBinaries(dir) {
			return dir
		}
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if dir := filepath.Dir(initdb); hasServerBinaries(dir) {
			return dir
		}
	}
	return ""
}

// hasServerBinaries reports whether dir holds initdb, pg_ctl and postgres.
func hasServerBinaries(dir string) bool {
	if dir == "" {
		return false
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// compareVersions compares dotted numeric versions such as "9.6" and "15".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// aptInstall runs apt-get update and apt-get install -y postgresql, streaming
// their output to log.
func aptInstall(ctx context.Context, log *slog.Logger) error {
	aptGet, err := exec.LookPath("apt-get")
	if err != nil {
		return errors.New("apt-get not found")
	}
	log.Info("PostgreSQL server binaries not found; installing the postgresql package with apt-get")
	for _, args := range [][]string{{"update"}, {"install", "-y", "postgresql"}} {
		args = append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)
		cmd := exec.CommandContext(ctx, aptGet, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		w := &lineLogger{log: log, msg: "apt-get"}
		cmd.Stdout, cmd.Stderr = w, w
		err := cmd.Run()
		w.flush()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}

// lineLogger logs each line written to it.
type lineLogger struct {
	log *slog.Logger
	msg string
	mu  sync.Mutex
	buf []byte
}

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(w.buf[:i])); line != "" {
			w.log.Info(w.msg, "out", line)
		}
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

func (w *lineLogger) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if line := strings.TrimSpace(string(w.buf)); line != "" {
		w.log.Info(w.msg, "out", line)
	}
	w.buf = nil
}
