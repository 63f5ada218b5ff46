package routing

import (
	"container/list"
	"sync"
)

// Sessions remembers, for each (workspace, session_id), the endpoint that
// last served it, so a session stays on one endpoint (and its prompt cache)
// while that endpoint stays healthy. It holds at most Max sessions and
// forgets the least recently used first.
type Sessions struct {
	Max int

	mu    sync.Mutex
	ll    *list.List
	index map[string]*list.Element
}

type session struct{ key, endpoint string }

// NewSessions holds at most max sessions.
func NewSessions(max int) *Sessions {
	return &Sessions{Max: max, ll: list.New(), index: map[string]*list.Element{}}
}

// Get returns the endpoint that last served the session.
func (s *Sessions) Get(workspaceID, id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.index[workspaceID+"\x00"+id]
	if !ok {
		return "", false
	}
	s.ll.MoveToFront(el)
	return el.Value.(*session).endpoint, true
}

// Put records the endpoint that served the session.
func (s *Sessions) Put(workspaceID, id, endpoint string) {
	key := workspaceID + "\x00" + id
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.index[key]; ok {
		el.Value.(*session).endpoint = endpoint
		s.ll.MoveToFront(el)
		return
	}
	s.index[key] = s.ll.PushFront(&session{key: key, endpoint: endpoint})
	for s.ll.Len() > s.Max {
		old := s.ll.Back()
		s.ll.Remove(old)
		delete(s.index, old.Value.(*session).key)
	}
}
