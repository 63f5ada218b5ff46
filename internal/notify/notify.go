// Package notify keeps the in-memory caches of every gateway replica
// coherent through PostgreSQL LISTEN/NOTIFY.
//
// A change that affects cached state (a key disabled, a member's role
// changed, a credential added) publishes an invalidation inside the
// transaction that makes it, so it is delivered exactly when the change
// commits. Each replica's Listener hands invalidations to its caches. When
// the listening connection breaks, notifications may have been missed, so
// the Listener invalidates everything before listening again.
package notify

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Channel is the PostgreSQL channel invalidations travel on.
const Channel = "perpetuo_invalidate"

// Kinds of invalidated things.
const (
	Key        = "key"        // one API key, by id
	Member     = "member"     // every key of a member (its role changed)
	Workspace  = "workspace"  // every key and credential of a workspace
	Credential = "credential" // a workspace's credentials, by workspace id
	Policy     = "policy"     // a workspace's guardrails and budget, by workspace id
	All        = "*"          // everything (the listener reconnected)
)

// Event is one invalidation.
type Event struct {
	Kind string
	ID   string
	// token identifies the publisher's own event, so it can wait for its
	// echo (see Listener.Await).
	token string
}

func (e Event) payload() string { return e.Kind + ":" + e.ID + ":" + e.token }

func parse(payload string) (Event, bool) {
	parts := strings.SplitN(payload, ":", 3)
	if len(parts) != 3 {
		return Event{}, false
	}
	return Event{Kind: parts[0], ID: parts[1], token: parts[2]}, true
}

// Execer runs a statement: a transaction, a connection or a pool.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Publish sends an invalidation through db; inside a transaction it is
// delivered when the transaction commits.
func Publish(ctx context.Context, db Execer, ev Event) error {
	if _, err := db.Exec(ctx, "SELECT pg_notify($1, $2)", Channel, ev.payload()); err != nil {
		return fmt.Errorf("notify %s:%s: %w", ev.Kind, ev.ID, err)
	}
	return nil
}
