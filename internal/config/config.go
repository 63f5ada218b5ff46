// Package config reads Perpetuo's settings from the environment.
package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/perpetuo/perpetuo/internal/egress"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/telemetry"
)

// Config is every setting of `perpetuo serve`.
type Config struct {
	DatabaseURL  string // empty: run a managed local PostgreSQL under DataDir
	Listen       string
	DataDir      string
	BootstrapKey string
	CatalogPath  string
	MasterKey    string
	MasterKeyOld string // the previous master key, during a rotation
	// Demo is "1" (serve the mock upstream as provider "mock"), "auto" (do so
	// only when no provider credential is configured) or "" (never).
	Demo string
	// Credentials are operator-level provider credentials from the
	// environment, keyed by provider slug.
	Credentials routing.Set
	// StaleWindow (PERPETUO_STALE_CACHE_MAX) is how long cached keys and
	// credentials serve while the database is unreachable; 0 keeps the
	// default, "off" (negative) disables it.
	StaleWindow time.Duration
	// DrainDelay (PERPETUO_DRAIN_DELAY) is how long /readyz answers 503
	// before the listener stops accepting, so load balancers notice.
	DrainDelay time.Duration
	// Egress (PERPETUO_EGRESS_ALLOW) is what workspace credentials' base
	// URLs may reach beyond public addresses: CIDRs and host names.
	Egress egress.Policy
	// MetricsToken (PERPETUO_METRICS_TOKEN) protects /metrics when set.
	MetricsToken string
	// DebugListen (PERPETUO_DEBUG_LISTEN) serves Go's profiler
	// (/debug/pprof/) on a loopback address when set; off by default.
	DebugListen string
	// Upstream deadlines per attempt: ConnectTimeout
	// (PERPETUO_CONNECT_TIMEOUT, TCP and TLS), FirstByteTimeout
	// (PERPETUO_FIRST_BYTE_TIMEOUT, until a stream's first chunk),
	// StreamIdle (PERPETUO_STREAM_IDLE, between chunks) and AttemptTimeout
	// (PERPETUO_ATTEMPT_TIMEOUT, a whole non-streaming call). 0: defaults.
	ConnectTimeout, FirstByteTimeout, StreamIdle, AttemptTimeout time.Duration
	// Retention (PERPETUO_RECORDS_RETENTION) is how long raw generation
	// records are kept: a duration, or days ("90d"); default 90 days,
	// negative when off (kept forever). Aggregates and spend rollups stay.
	Retention time.Duration
	// KeepAlive (PERPETUO_STREAM_KEEPALIVE) is the silence towards a
	// streaming client after which it gets a keep-alive comment; default
	// 15s, negative when off.
	KeepAlive time.Duration
	// Telemetry is where traces and metrics are exported beyond /metrics:
	// OTLP over HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or a per-signal
	// endpoint) is set; nowhere by default.
	Telemetry telemetry.Config
}

// FromEnv reads the configuration; environ is os.Environ() in production.
func FromEnv(environ []string) (Config, error) {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	c := Config{
		DatabaseURL:  env["DATABASE_URL"],
		Listen:       or(env["PERPETUO_LISTEN"], ":8080"),
		DataDir:      or(env["PERPETUO_DATA_DIR"], ".data"),
		BootstrapKey: env["PERPETUO_BOOTSTRAP_KEY"],
		CatalogPath:  env["PERPETUO_CATALOG"],
		MasterKey:    env["PERPETUO_MASTER_KEY"],
		MasterKeyOld: env["PERPETUO_MASTER_KEY_OLD"],
		Demo:         env["PERPETUO_DEMO"],
		Credentials:  credentials(env),
		MetricsToken: env["PERPETUO_METRICS_TOKEN"],
		DebugListen:  env["PERPETUO_DEBUG_LISTEN"],
	}
	switch c.Demo {
	case "", "0", "false":
		c.Demo = ""
	case "1", "true", "auto":
		if c.Demo == "true" {
			c.Demo = "1"
		}
	default:
		return Config{}, fmt.Errorf("PERPETUO_DEMO=%q: use 1, auto or 0", c.Demo)
	}
	for k, v := range env {
		if strings.HasPrefix(k, "PERPETUO_PROVIDER_") && strings.HasSuffix(k, "_DEPLOYMENTS") {
			if _, err := Deployments(v); err != nil {
				return Config{}, fmt.Errorf("%s: %w (e.g. gpt-4o=my-gpt4o,gpt-4o-mini=mini)", k, err)
			}
		}
	}
	var err error
	if c.StaleWindow, err = duration(env, "PERPETUO_STALE_CACHE_MAX", 0); err != nil {
		return Config{}, err
	}
	if c.DrainDelay, err = duration(env, "PERPETUO_DRAIN_DELAY", 2*time.Second); err != nil {
		return Config{}, err
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"PERPETUO_CONNECT_TIMEOUT", &c.ConnectTimeout}, {"PERPETUO_FIRST_BYTE_TIMEOUT", &c.FirstByteTimeout},
		{"PERPETUO_STREAM_IDLE", &c.StreamIdle}, {"PERPETUO_ATTEMPT_TIMEOUT", &c.AttemptTimeout}} {
		if *d.to, err = duration(env, d.name, 0); err != nil {
			return Config{}, err
		}
		if *d.to < 0 {
			return Config{}, fmt.Errorf("%s: use a positive duration such as 10s (it cannot be off)", d.name)
		}
	}
	if c.Retention, err = days(env, "PERPETUO_RECORDS_RETENTION", 90*24*time.Hour); err != nil {
		return Config{}, err
	}
	if c.KeepAlive, err = duration(env, "PERPETUO_STREAM_KEEPALIVE", 15*time.Second); err != nil {
		return Config{}, err
	}
	if c.Telemetry, err = telemetry.FromEnv(env); err != nil {
		return Config{}, err
	}
	if err := loopbackOnly(c.DebugListen); err != nil {
		return Config{}, fmt.Errorf("PERPETUO_DEBUG_LISTEN: %w", err)
	}
	if c.Egress, err = egress.ParseAllow(env["PERPETUO_EGRESS_ALLOW"]); err != nil {
		return Config{}, fmt.Errorf("PERPETUO_EGRESS_ALLOW: %w (entries are separated by commas)", err)
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return Config{}, fmt.Errorf("PERPETUO_DATA_DIR: %w", err)
	}
	c.DataDir = abs
	return c, nil
}

// loopbackOnly accepts "" or a host:port whose host is a loopback IP or
// "localhost": the profiler shows memory and must never face a network.
func loopbackOnly(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("use host:port, such as 127.0.0.1:6060")
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("the host must be a loopback address (127.0.0.1, ::1 or localhost)")
	}
	return nil
}

// duration reads a Go duration ("90s", "5m"); "off" is -1, unset is def.
func duration(env map[string]string, name string, def time.Duration) (time.Duration, error) {
	v := env[name]
	switch v {
	case "":
		return def, nil
	case "off", "0":
		return -1, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: use a duration such as 30s or 5m, or off", name, v)
	}
	return d, nil
}

// days is duration that also takes whole days ("90d").
func days(env map[string]string, name string, def time.Duration) (time.Duration, error) {
	v := env[name]
	if n, ok := strings.CutSuffix(v, "d"); ok && n != "" {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("%s=%q: use a number of days such as 90d, a duration such as 720h, or off", name, v)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	return duration(env, name, def)
}

// DemoEnabled reports whether the in-process mock upstream should serve.
func (c Config) DemoEnabled() bool {
	return c.Demo == "1" || c.Demo == "auto" && len(c.Credentials) == 0
}

// credentials reads OPENAI_API_KEY and PERPETUO_PROVIDER_<SLUG>_API_KEY /
// _BASE_URL. SLUG is the provider slug upper-cased with '-' as '_'
// (google-ai-studio → GOOGLE_AI_STUDIO). A base URL alone (a local server
// that takes no key) is a credential too.
func credentials(env map[string]string) routing.Set {
	out := routing.Set{}
	if k := env["OPENAI_API_KEY"]; k != "" {
		out["openai"] = routing.Credential{Provider: "openai", APIKey: k, BaseURL: env["OPENAI_BASE_URL"]}
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		rest, ok := strings.CutPrefix(k, "PERPETUO_PROVIDER_")
		if !ok || env[k] == "" {
			continue
		}
		var slugVar string
		switch {
		case strings.HasSuffix(rest, "_API_KEY"):
			slugVar = strings.TrimSuffix(rest, "_API_KEY")
		case strings.HasSuffix(rest, "_BASE_URL"):
			slugVar = strings.TrimSuffix(rest, "_BASE_URL")
		case strings.HasSuffix(rest, "_API_VERSION"), strings.HasSuffix(rest, "_DEPLOYMENTS"):
			continue // settings of a credential named by its key or URL
		default:
			continue
		}
		slug := strings.ReplaceAll(strings.ToLower(slugVar), "_", "-")
		c := out[slug]
		c.Provider = slug
		if v := env["PERPETUO_PROVIDER_"+slugVar+"_API_KEY"]; v != "" {
			c.APIKey = v
		}
		if v := env["PERPETUO_PROVIDER_"+slugVar+"_BASE_URL"]; v != "" {
			c.BaseURL = v
		}
		c.APIVersion = env["PERPETUO_PROVIDER_"+slugVar+"_API_VERSION"]
		c.Deployments, _ = Deployments(env["PERPETUO_PROVIDER_"+slugVar+"_DEPLOYMENTS"])
		out[slug] = c
	}
	return out
}

// Deployments parses "model=deployment,model2=deployment2" (Azure
// OpenAI's deployment names per upstream model).
func Deployments(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		model, dep, ok := strings.Cut(strings.TrimSpace(pair), "=")
		model, dep = strings.TrimSpace(model), strings.TrimSpace(dep)
		if !ok || model == "" || dep == "" {
			return nil, fmt.Errorf("%q is not model=deployment", strings.TrimSpace(pair))
		}
		out[model] = dep
	}
	return out, nil
}

func or(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// Environ is os.Environ, for callers that want the real environment.
func Environ() []string { return os.Environ() }
