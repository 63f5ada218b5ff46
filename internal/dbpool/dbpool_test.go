package dbpool_test

import (
	"context"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/pgtest"
)

// TestMoneyRoundTripsExactly: numeric values go to and come back from
// PostgreSQL in binary through the registered codec, digit for digit.
func TestMoneyRoundTripsExactly(t *testing.T) {
	pool := pgtest.New(t) // configured by dbpool.Config, as the server's
	ctx := context.Background()
	for _, v := range []string{"0", "0.0000130000000000000001", "-12.5", "123456789012345678901234567890.000000000001", "1e-30"} {
		in := decimal.RequireFromString(v)
		var out decimal.Decimal
		var text string
		require.NoError(t, pool.QueryRow(ctx, `SELECT $1::numeric, $1::numeric::text`, in).Scan(&out, &text))
		require.True(t, in.Equal(out), "%s came back as %s", v, out)
		require.True(t, in.Equal(decimal.RequireFromString(text)), "%s reached PostgreSQL as %s", v, text)
	}
}
