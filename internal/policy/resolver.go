package policy

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/notify"
)

// Source reads what a workspace contributes to its requests' policies.
type Source interface {
	PolicyWorkspace(ctx context.Context, id string) (Workspace, error)
	Guardrails(ctx context.Context, workspaceID string) ([]guardrails.Guardrail, error)
}

// snapshot is one workspace's part of every policy.
type snapshot struct {
	ws         Workspace
	guardrails map[string]guardrails.Guardrail
}

// Resolver resolves a key's Policy from a per-workspace cache of the
// workspace's budget and guardrails (the key's own fields and its member's
// guardrail come cached with the key), so steady state costs no database
// round trip. Invalidate drops a workspace on change (LISTEN/NOTIFY).
type Resolver struct {
	src   Source
	stale *notify.Staleness // nil: the cache is always exact

	mu      sync.Mutex
	cache   map[string]*snapshot
	version uint64 // bumped by every invalidation, so a load that raced one is not cached
}

// NewResolver returns a Resolver over src; stale (may be nil) works as for
// keys.NewAuthenticator.
func NewResolver(src Source, stale *notify.Staleness) *Resolver {
	return &Resolver{src: src, stale: stale, cache: map[string]*snapshot{}}
}

const loadTimeout = 2 * time.Second

// For is the policy of a request made with key k.
func (r *Resolver) For(ctx context.Context, k keys.Key) (Policy, error) {
	r.mu.Lock()
	cached, ok := r.cache[k.WorkspaceID]
	version := r.version
	r.mu.Unlock()
	fresh := r.stale.Fresh()
	if !ok || !(fresh || r.stale.SkipLookup()) {
		lctx := ctx
		if !fresh {
			var cancel context.CancelFunc
			lctx, cancel = context.WithTimeout(ctx, loadTimeout)
			defer cancel()
		}
		s, err := r.load(lctx, k.WorkspaceID)
		switch {
		case err == nil:
			r.mu.Lock()
			if r.version == version {
				r.cache[k.WorkspaceID] = s
			}
			r.mu.Unlock()
			cached = s
		case !(ok && r.stale.Failed()):
			return Policy{}, apierr.New(http.StatusServiceUnavailable, apierr.Unavailable,
				"Perpetuo cannot read this workspace's guardrails from its database; retry shortly.").
				WithRetryAfter(5).WithCause(err)
		}
	}
	return Resolve(Inputs{Key: k, Workspace: cached.ws, Guardrails: cached.guardrails}), nil
}

func (r *Resolver) load(ctx context.Context, workspaceID string) (*snapshot, error) {
	ws, err := r.src.PolicyWorkspace(ctx, workspaceID)
	if err != nil {
		return nil, fmt.Errorf("load workspace policy: %w", err)
	}
	gs, err := r.src.Guardrails(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	s := &snapshot{ws: ws, guardrails: make(map[string]guardrails.Guardrail, len(gs))}
	for _, g := range gs {
		s.guardrails[g.ID] = g
	}
	return s, nil
}

// Invalidate drops a workspace's snapshot; "" drops every one.
func (r *Resolver) Invalidate(workspaceID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.version++
	if workspaceID == "" {
		clear(r.cache)
		return
	}
	delete(r.cache, workspaceID)
}
