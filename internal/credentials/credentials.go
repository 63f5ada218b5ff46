// Package credentials is the workspaces' provider keys (BYOK): the rules
// for storing one (Service: a provider of the catalog, a base URL the
// egress policy allows, the key sealed bound to its row), and which keys a
// workspace routes with (Cache): its own credentials (decrypted only in
// memory, only to call the upstream), and the operator's server-wide keys
// where the workspace has none of its own and has not opted out of them.
//
// Resolved sets are cached per workspace and dropped when a credential or
// the workspace changes (Invalidate, driven by LISTEN/NOTIFY), so routing
// costs no database round trip in steady state.
package credentials

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/notify"
	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/secrets"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

// Credential is a workspace's provider key, as stored: the secret is
// ciphertext (internal/secrets), bound to the row id.
type Credential struct {
	ID          string
	WorkspaceID string
	Provider    string
	Name        string
	Label       string
	Secret      []byte
	BaseURL     string
	// DataPolicy is what the credential's base URL does with data, as
	// the workspace declared it; nil when it declared none. Without a
	// base URL the catalog's policy applies and this is always nil.
	DataPolicy *catalog.DataPolicy
	// Azure is the Azure OpenAI addressing (API version, deployment per
	// upstream model); nil for other providers.
	Azure     *Azure
	Disabled  bool
	Priority  int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Azure is how a credential addresses Azure OpenAI.
type Azure struct {
	APIVersion  string            `json:"api_version,omitempty"`
	Deployments map[string]string `json:"deployments,omitempty"`
}

// Source reads what a workspace's set is made of.
type Source interface {
	Workspace(ctx context.Context, id string) (workspaces.Workspace, error)
	Credentials(ctx context.Context, workspaceID string) ([]Credential, error)
}

// Cache implements routing.Credentials.
type Cache struct {
	log      *slog.Logger
	source   Source
	ring     *secrets.Keyring
	operator routing.Set
	stale    *notify.Staleness // nil: the cache is always exact

	mu      sync.Mutex
	sets    map[string]routing.Set
	version uint64 // bumped by every invalidation, so a load that raced one is not cached
}

// NewCache returns a cache over st; operator holds the server-wide keys.
// stale (may be nil) works as for keys.NewAuthenticator: while
// invalidations may be missed, a cached set is reloaded, and serves as
// cached only while the database does not answer, within the window.
func NewCache(st Source, ring *secrets.Keyring, operator routing.Set, log *slog.Logger, stale *notify.Staleness) *Cache {
	return &Cache{log: log, source: st, ring: ring, operator: operator, stale: stale, sets: map[string]routing.Set{}}
}

// loadTimeout bounds a reload while the cache is stale.
const loadTimeout = 2 * time.Second

// For implements routing.Credentials.
func (c *Cache) For(ctx context.Context, workspaceID string) (routing.Set, error) {
	c.mu.Lock()
	cached, ok := c.sets[workspaceID]
	version := c.version
	c.mu.Unlock()
	fresh := c.stale.Fresh()
	if ok && (fresh || c.stale.SkipLookup()) {
		return cached, nil
	}
	lctx := ctx
	if !fresh {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, loadTimeout)
		defer cancel()
	}
	set, err := c.load(lctx, workspaceID)
	if err != nil {
		if c.stale.Failed() && ok {
			return cached, nil
		}
		return nil, apierr.New(http.StatusServiceUnavailable, apierr.Unavailable,
			"Perpetuo cannot read this workspace's provider credentials from its database; retry shortly.").
			WithRetryAfter(5).WithCause(err)
	}
	c.mu.Lock()
	if c.version == version {
		c.sets[workspaceID] = set
	}
	c.mu.Unlock()
	return set, nil
}

func (c *Cache) load(ctx context.Context, workspaceID string) (routing.Set, error) {
	ws, err := c.source.Workspace(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("load workspace: %w", err)
	}
	creds, err := c.source.Credentials(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	set := routing.Set{}
	if ws.UseOperatorCredentials {
		for slug, cr := range c.operator {
			set[slug] = cr
		}
	}
	own := map[string]bool{}
	for _, cr := range creds { // ordered by provider, then priority
		if cr.Disabled || own[cr.Provider] {
			continue
		}
		key, err := c.ring.Open(cr.Secret, []byte(cr.ID))
		if err != nil {
			// One unreadable credential (a replica without the right master
			// key) must not take the whole workspace down, but its provider
			// fails closed: never the operator's key in its place, which the
			// workspace chose not to use for this provider.
			c.log.Error("cannot decrypt a BYOK credential; its provider is unavailable to the workspace on this replica — check PERPETUO_MASTER_KEY",
				"credential", cr.ID, "workspace", workspaceID, "provider", cr.Provider, "err", err)
			delete(set, cr.Provider)
			own[cr.Provider] = true
			continue
		}
		own[cr.Provider] = true
		rc := routing.Credential{Provider: cr.Provider, APIKey: string(key), BaseURL: cr.BaseURL, BYOK: true,
			DataPolicy: EffectivePolicy(cr)}
		if cr.Azure != nil {
			rc.APIVersion, rc.Deployments = cr.Azure.APIVersion, cr.Azure.Deployments
		}
		set[cr.Provider] = rc
	}
	return set, nil
}

// EffectivePolicy is the data policy of traffic sent with cr: nil (the
// catalog's) when it calls the catalog's URL; its declared policy, else
// Unknown (retains and trains), when its base URL sends traffic elsewhere.
func EffectivePolicy(cr Credential) *catalog.DataPolicy {
	if cr.BaseURL == "" {
		return nil
	}
	if cr.DataPolicy != nil {
		return cr.DataPolicy
	}
	dp := catalog.Unknown
	dp.Source = "credential base_url without a declared data policy"
	return &dp
}

// Invalidate drops a workspace's set; "" drops every set.
func (c *Cache) Invalidate(workspaceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.version++
	if workspaceID == "" {
		c.sets = map[string]routing.Set{}
		return
	}
	delete(c.sets, workspaceID)
}
