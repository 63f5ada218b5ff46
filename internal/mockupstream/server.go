package mockupstream

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// modelIDs are the ids GET /v1/models lists.
var modelIDs = []string{"echo", "fail-429", "fail-500", "fail-503", "midstream-fail", "slow"}

// Models returns the model ids GET /v1/models lists.
func Models() []string {
	return slices.Clone(modelIDs)
}

// modelsCreated is the fixed creation time listed for every model.
const modelsCreated = 1700000000

// server is the handler New returns.
type server struct {
	cfg Config
	mu  sync.Mutex // guards rng and prefixes
	rng *mrand.Rand
	// prefixes are the prompts (all messages but the last) seen, as the
	// provider's automatic prompt cache holds them.
	prefixes map[[32]byte]bool
}

// minCachedPrefix is the shortest prefix cached, in the fake's tokens
// (OpenAI's is 1,024 tokens).
const minCachedPrefix = 32

// cached is how many of req's prompt tokens the cache holds: all but the
// last message's, when that prefix (at least minCachedPrefix tokens) was
// sent before. OpenAI caches prompt prefixes on its own, and reports the
// hits as cached_tokens.
func (s *server) cached(req chatRequest) int {
	if len(req.Messages) < 2 {
		return 0
	}
	prefix := req
	prefix.Messages = req.Messages[:len(req.Messages)-1]
	if prefix.promptTokens() < minCachedPrefix {
		return 0
	}
	b, _ := json.Marshal(prefix.Messages)
	key := sha256.Sum256(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prefixes == nil {
		s.prefixes = map[[32]byte]bool{}
	}
	if s.prefixes[key] {
		return prefix.promptTokens()
	}
	s.prefixes[key] = true
	return 0
}

// New returns an http.Handler serving POST /v1/chat/completions and GET
// /v1/models; any other route gets OpenAI's 404 error.
func New(cfg Config) http.Handler {
	s := &server{cfg: cfg, rng: newRNG(cfg.Seed)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("/", notFound)
	return s.authenticate(mux)
}

// newRNG is the random source behind Config.FailureRate.
func newRNG(seed int64) *mrand.Rand { return mrand.New(mrand.NewPCG(uint64(seed), 0)) }

// authenticate requires "Authorization: Bearer <APIKey>" when an API key is
// configured.
func (s *server) authenticate(next http.Handler) http.Handler {
	if s.cfg.APIKey == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if auth == "" {
			writeError(w, http.StatusUnauthorized, invalidRequest("You didn't provide an API key. You need to "+
				"provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer "+
				"YOUR_KEY).", "", ""))
			return
		}
		if subtle.ConstantTimeCompare([]byte(auth), want) != 1 {
			writeError(w, http.StatusUnauthorized, failure(http.StatusUnauthorized, ""))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// chatCompletions serves POST /v1/chat/completions.
func (s *server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	req, detail := readRequest(r)
	if detail != nil {
		writeError(w, http.StatusBadRequest, *detail)
		return
	}
	p, err := s.planFor(r, req.Model)
	if err != nil {
		writeError(w, http.StatusBadRequest, invalidRequest(err.Error(), "", ""))
		return
	}
	if p.failStatus != 0 {
		writeError(w, p.failStatus, failure(p.failStatus, req.Model))
		return
	}
	c := newCompletion(req, s.cached(req))
	if req.Stream {
		streamCompletion(w, r, c, p)
		return
	}
	if !sleep(r, p.latency+p.ttft) {
		return
	}
	writeJSON(w, http.StatusOK, c.response())
}

// modelList is OpenAI's GET /v1/models body.
type modelList struct {
	Object string  `json:"object"`
	Data   []model `json:"data"`
}

// model is one entry of a modelList.
type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// models serves GET /v1/models.
func (s *server) models(w http.ResponseWriter, _ *http.Request) {
	list := modelList{Object: "list", Data: make([]model, 0, len(modelIDs))}
	for _, id := range modelIDs {
		list.Data = append(list.Data, model{ID: id, Object: "model", Created: modelsCreated, OwnedBy: "perpetuo"})
	}
	writeJSON(w, http.StatusOK, list)
}

// notFound answers unknown routes as OpenAI does.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, invalidRequest(fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), "", ""))
}

// sleep waits d, and reports false if the client went away first.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return r.Context().Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// newID returns an OpenAI-style id with prefix.
func newID(prefix string) string {
	return prefix + rand.Text()
}
