package store

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/perpetuo/perpetuo/internal/credentials"
	"github.com/perpetuo/perpetuo/internal/guardrails"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/workspaces"
)

// errNotFound is the store's answer for a row that does not exist (in that
// workspace). It is the ErrNotFound of every domain package the store
// implements a Store for, so a method two of their interfaces share
// (MemberRole: keys and guardrails) answers each in its own terms.
var errNotFound error = notFound{}

type notFound struct{}

func (notFound) Error() string { return "not found" }

// Is makes errors.Is(err, keys.ErrNotFound) and its peers hold.
func (notFound) Is(target error) bool {
	switch target {
	case keys.ErrNotFound, workspaces.ErrNotFound, credentials.ErrNotFound, guardrails.ErrNotFound, records.ErrNotFound:
		return true
	}
	return false
}

// isForeignKey reports a reference to a row that does not exist.
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
