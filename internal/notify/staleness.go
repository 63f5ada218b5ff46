package notify

import (
	"sync"
	"time"
)

// Staleness tells the caches fed by a Listener whether they may have
// missed invalidations (the listener's connection is lost), and for how long
// a cached entry may still serve when the database cannot be asked.
//
// While connected, caches are exact. While disconnected, a cache asks the
// database first, and serves what it holds only when the database does not
// answer, for at most Window after the connection was lost: during a
// database outage, keys and credentials keep working as they were when it
// began, and a change made meanwhile (which another replica may see) takes
// effect here at the latest when Window ends or the connection returns.
type Staleness struct {
	Window time.Duration
	now    func() time.Time

	mu       sync.Mutex
	since    time.Time // zero while connected
	lastFail time.Time
}

// failPause is how long after a failed lookup caches stop asking the
// database and serve what they hold, so an outage does not cost every
// request a doomed round trip.
const failPause = time.Second

// NewStaleness returns a Staleness allowing window of stale service; now
// may be nil.
func NewStaleness(window time.Duration, now func() time.Time) *Staleness {
	if now == nil {
		now = time.Now
	}
	return &Staleness{Window: window, now: now}
}

func (s *Staleness) lost() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.since.IsZero() {
		s.since = s.now()
	}
}

func (s *Staleness) restored() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.since, s.lastFail = time.Time{}, time.Time{}
}

// Fresh reports whether cached entries are exact (invalidations arrive).
// A nil Staleness is always fresh.
func (s *Staleness) Fresh() bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.since.IsZero()
}

// SkipLookup reports whether a lookup failed so recently that a cached
// entry should serve without asking the database again.
func (s *Staleness) SkipLookup() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.since.IsZero() && s.now().Sub(s.lastFail) < failPause && s.now().Sub(s.since) <= s.Window
}

// Failed notes a lookup that could not reach the database and reports
// whether a cached entry may serve instead.
func (s *Staleness) Failed() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastFail = s.now()
	return !s.since.IsZero() && s.now().Sub(s.since) <= s.Window
}

// Since is when the connection was lost (zero while connected).
func (s *Staleness) Since() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.since
}
