package keys

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/notify"
)

// ErrNotFound is returned by a Lookup that knows no key with that hash, and
// by a Store that has no such key (or member).
var ErrNotFound = errors.New("key not found")

// Lookup finds a key by the hash of its plaintext.
type Lookup interface {
	KeyByHash(ctx context.Context, hash []byte) (Key, error)
}

// Authenticator resolves bearer tokens to keys, caching what it found.
// Invalidate drops a key when it changes, so a disabled or revoked key is
// refused on its next request rather than after a TTL.
type Authenticator struct {
	lookup Lookup
	now    func() time.Time
	stale  *notify.Staleness // nil: the cache is always exact

	mu      sync.RWMutex
	cache   map[string]Key       // hex hash → key
	unknown map[string]time.Time // hex hash → until when it is known not to exist
	version uint64               // bumped by every invalidation, so a lookup that raced one is not cached
}

// Unknown well-formed keys are remembered for unknownTTL, up to
// maxUnknown of them, so a client retrying (or guessing) keys costs no
// database lookup each time. A key cannot be created with a hash that was
// looked up before (keys are random), so this never hides a real key.
const (
	unknownTTL = time.Minute
	maxUnknown = 10000
)

// NewAuthenticator returns an Authenticator over lookup; now and stale may
// be nil. While stale says invalidations may be missed, a cached key is
// checked against the database again, and serves as cached only while the
// database does not answer, within the staleness window.
func NewAuthenticator(lookup Lookup, now func() time.Time, stale *notify.Staleness) *Authenticator {
	if now == nil {
		now = time.Now
	}
	return &Authenticator{lookup: lookup, now: now, stale: stale, cache: map[string]Key{}, unknown: map[string]time.Time{}}
}

// errUnknownKey refuses a well-formed key Perpetuo does not know.
var errUnknownKey = apierr.New(http.StatusUnauthorized, apierr.Authentication,
	"Unknown API key: check that it was copied whole and belongs to this gateway, or create a new one.")

// lookupTimeout bounds a key lookup while the cache is stale: the database
// may be unreachable, and a cached key should serve rather than wait.
const lookupTimeout = 2 * time.Second

// errKeyStoreDown refuses a key that cannot be checked.
var errKeyStoreDown = apierr.New(http.StatusServiceUnavailable, apierr.Unavailable,
	"Perpetuo cannot reach its database to check this API key; retry shortly.").WithRetryAfter(5)

var errUnauthenticated = apierr.New(http.StatusUnauthorized, apierr.Authentication,
	"Missing API key: send 'Authorization: Bearer pk_...'.")

// Authenticate returns the key a bearer token names, or an authentication
// error that says why it was refused.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (Key, error) {
	if token == "" {
		return Key{}, errUnauthenticated
	}
	if !WellFormed(token) {
		return Key{}, apierr.New(http.StatusUnauthorized, apierr.Authentication,
			"Invalid API key: Perpetuo keys start with 'pk_'; check the Authorization header.")
	}
	h := Hash(token)
	hk := hex.EncodeToString(h)
	a.mu.RLock()
	k, ok := a.cache[hk]
	until, known := a.unknown[hk]
	version := a.version
	a.mu.RUnlock()
	if !ok && known && a.now().Before(until) {
		return Key{}, errUnknownKey
	}
	if !ok || !a.stale.Fresh() && !a.stale.SkipLookup() {
		fresh, err := a.find(ctx, h)
		switch {
		case err == nil:
			k = fresh
			a.mu.Lock()
			if a.version == version {
				a.cache[hk] = k
			}
			a.mu.Unlock()
		case errors.Is(err, ErrNotFound):
			a.mu.Lock()
			if len(a.unknown) >= maxUnknown {
				clear(a.unknown) // bounded: a flood of guesses costs lookups again, not memory
			}
			a.unknown[hk] = a.now().Add(unknownTTL)
			a.mu.Unlock()
			return Key{}, errUnknownKey
		case !(a.stale.Failed() && ok): // no cached key may stand in
			return Key{}, errKeyStoreDown.WithCause(fmt.Errorf("look up key: %w", err))
		}
	}
	if k.Disabled {
		return Key{}, apierr.New(http.StatusUnauthorized, apierr.Authentication,
			"API key %s is disabled; ask a workspace admin to enable it.", k.Label)
	}
	if k.ExpiresAt != nil && !a.now().Before(*k.ExpiresAt) {
		return Key{}, apierr.New(http.StatusUnauthorized, apierr.Authentication,
			"API key %s expired at %s; create a new one.", k.Label, k.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return k, nil
}

// find looks a key up, bounded in time while the cache is stale.
func (a *Authenticator) find(ctx context.Context, h []byte) (Key, error) {
	if !a.stale.Fresh() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, lookupTimeout)
		defer cancel()
	}
	return a.lookup.KeyByHash(ctx, h)
}

// InvalidateAll empties the cache; the next request of every key looks it up
// again.
func (a *Authenticator) InvalidateAll() {
	a.Invalidate(func(Key) bool { return true })
}

// Invalidate drops the cached keys that match, e.g. one key by id, a
// member's keys after a role change, or a deleted workspace's keys.
func (a *Authenticator) Invalidate(match func(Key) bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.version++
	clear(a.unknown)
	for h, k := range a.cache {
		if match(k) {
			delete(a.cache, h)
		}
	}
}
