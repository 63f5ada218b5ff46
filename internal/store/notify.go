package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/notify"
)

// Notifier prepares invalidations and waits for their echo (notify.Listener).
type Notifier interface {
	Prepare(kind, id string) (notify.Event, func(timeout time.Duration))
}

// echoTimeout bounds the wait for a change's invalidation to come back.
const echoTimeout = 2 * time.Second

// SetNotifier makes changes publish invalidations through n.
func (s *Store) SetNotifier(n Notifier) { s.notifier = n }

// change runs fn in a transaction that also publishes the invalidation
// kind:id at commit, then waits until this replica's listener got it back:
// by then PostgreSQL has delivered it to every replica.
func (s *Store) change(ctx context.Context, kind, id string, fn func(q *db.Queries) error) error {
	var ev notify.Event
	wait := func(time.Duration) {}
	if s.notifier != nil {
		ev, wait = s.notifier.Prepare(kind, id)
	} else {
		ev = notify.Event{Kind: kind, ID: id}
	}
	err := s.tx(ctx, func(tx pgx.Tx, q *db.Queries) error {
		if err := fn(q); err != nil {
			return err
		}
		return notify.Publish(ctx, tx, ev)
	})
	if err != nil {
		wait(0) // forget the waiter
		return err
	}
	wait(echoTimeout)
	return nil
}
