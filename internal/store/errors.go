package store

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// Errors callers branch on.
var (
	// ErrNotFound: no such row in that workspace.
	ErrNotFound = errors.New("not found")
	// ErrLastOwner: the change would leave a workspace without an owner.
	ErrLastOwner = errors.New("a workspace must keep at least one owner")
)

// isForeignKey reports a reference to a row that does not exist.
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
