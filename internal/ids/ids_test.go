package ids

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewRoundTripsTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 18, 41, 0, 123e6, time.UTC)
	id := New(Generation, now)
	require.Len(t, id, len(Generation)+26)
	got, ok := Time(Generation, id)
	require.True(t, ok)
	require.Equal(t, now, got)
	require.NotEqual(t, id, New(Generation, now), "ids made in the same millisecond must differ")
}

func TestNewIsTimeOrdered(t *testing.T) {
	t.Parallel()
	a := New(Key, time.UnixMilli(1000))
	b := New(Key, time.UnixMilli(1001))
	require.Less(t, a[:len(Key)+10], b[:len(Key)+10])
}

func TestTimeRejectsForeignIDs(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "gen-", "gen-abc", "key_0123456789ABCDEFGHJKMNPQRS", "gen-0123456789ABCDEFGHJKMNPQ!U"} {
		_, ok := Time(Generation, id)
		require.False(t, ok, id)
	}
}

func TestFloorBoundsEarlierIDs(t *testing.T) {
	at := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	floor := Floor(Generation, at)
	require.Less(t, New(Generation, at.Add(-time.Millisecond)), floor)
	require.LessOrEqual(t, floor, New(Generation, at))
	got, ok := Time(Generation, floor)
	require.True(t, ok)
	require.Equal(t, at, got)
}
