// Package credentials resolves which provider keys a workspace routes with:
// its own BYOK credentials (decrypted only in memory, only to call the
// upstream), and the operator's server-wide keys where the workspace has
// none of its own and has not opted out of them.
//
// Resolved sets are cached per workspace and dropped when a credential or
// the workspace changes (Invalidate, driven by LISTEN/NOTIFY), so routing
// costs no database round trip in steady state.
package credentials

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/perpetuo/perpetuo/internal/routing"
	"github.com/perpetuo/perpetuo/internal/secrets"
	"github.com/perpetuo/perpetuo/internal/store"
)

// Store reads what a workspace's set is made of.
type Store interface {
	Workspace(ctx context.Context, id string) (store.Workspace, error)
	Credentials(ctx context.Context, workspaceID string) ([]store.Credential, error)
}

// Cache implements routing.Credentials.
type Cache struct {
	log      *slog.Logger
	store    Store
	ring     *secrets.Keyring
	operator routing.Set

	mu      sync.Mutex
	sets    map[string]routing.Set
	version uint64 // bumped by every invalidation, so a load that raced one is not cached
}

// NewCache returns a cache over store; operator holds the server-wide keys.
func NewCache(st Store, ring *secrets.Keyring, operator routing.Set, log *slog.Logger) *Cache {
	return &Cache{log: log, store: st, ring: ring, operator: operator, sets: map[string]routing.Set{}}
}

// For implements routing.Credentials.
func (c *Cache) For(ctx context.Context, workspaceID string) (routing.Set, error) {
	c.mu.Lock()
	set, ok := c.sets[workspaceID]
	version := c.version
	c.mu.Unlock()
	if ok {
		return set, nil
	}
	set, err := c.load(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.version == version {
		c.sets[workspaceID] = set
	}
	c.mu.Unlock()
	return set, nil
}

func (c *Cache) load(ctx context.Context, workspaceID string) (routing.Set, error) {
	ws, err := c.store.Workspace(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("load workspace: %w", err)
	}
	creds, err := c.store.Credentials(ctx, workspaceID)
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
			// key) must not take the whole workspace down: route without it.
			c.log.Error("cannot decrypt a BYOK credential; routing without it — check PERPETUO_MASTER_KEY on this replica",
				"credential", cr.ID, "workspace", workspaceID, "provider", cr.Provider, "err", err)
			continue
		}
		own[cr.Provider] = true
		set[cr.Provider] = routing.Credential{Provider: cr.Provider, APIKey: string(key), BaseURL: cr.BaseURL, BYOK: true}
	}
	return set, nil
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
