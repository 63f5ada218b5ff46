// Package migrations embeds the golang-migrate SQL files so the binary and
// the tests apply exactly the schema that sqlc generates code for.
package migrations

import "embed"

// FS holds every NNNNNN_name.up.sql / .down.sql file of this directory.
//
//go:embed *.sql
var FS embed.FS
