// Package records keeps the generation records: one per inference request,
// holding counts, costs, timings, identifiers and attribution, never prompt
// or completion text.
//
// Records are written off the request's critical path by a Recorder that
// batches them, and are readable from the moment the response ended: the
// Recorder serves records it has not flushed yet from memory.
package records

import (
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/attribution"
	"github.com/perpetuo/perpetuo/internal/safetext"
)

// Generation is one request's record.
type Generation struct {
	ID             string
	WorkspaceID    string
	KeyID          string
	MemberID       string
	RequestedModel string
	Model          string // "" when no endpoint served it
	Provider       string
	UpstreamID     string
	App            attribution.App // who made the request, from its headers
	User           string
	SessionID      string
	// Metadata is the request's own string tags (bounded by the API:
	// 16 keys, values of 512 bytes).
	Metadata           map[string]string `json:",omitempty"`
	Streamed           bool
	Cancelled          bool
	Status             int
	ErrorType          string
	FinishReason       string
	NativeFinishReason string
	PromptTokens       int
	CompletionTokens   int
	ReasoningTokens    int
	CachedTokens       int // cache reads, part of PromptTokens
	CacheWriteTokens   int // cache writes, part of PromptTokens
	Cost               decimal.Decimal
	BYOK               bool
	Latency            time.Duration
	TTFT               time.Duration // 0 when not streamed or no token arrived
	Attempts           []Attempt
	CreatedAt          time.Time
	// UsageEstimated: the token counts are Perpetuo's estimate (the
	// upstream reported none, e.g. a cancelled call).
	UsageEstimated bool
	// Guardrails are the ids of the guardrails that governed the request,
	// for the analytics aggregates (not a column of the record).
	Guardrails []string `json:",omitempty"`
	// ZDR: the request was restricted to zero-data-retention endpoints
	// (someone required it), so whoever served it retains nothing.
	ZDR bool
	// Anomaly says what the gateway corrected, e.g. reported usage beyond
	// what the request allowed, clamped; "" when nothing was.
	Anomaly string
	// Routing is the routing decision (JSON: strategy, candidates with
	// scores or exclusions, order): catalog slugs and numbers, never
	// request text. nil when no plan was made.
	Routing json.RawMessage `json:",omitempty"`
}

// Attempt is one upstream call of a generation.
type Attempt struct {
	Provider  string `json:"provider"`
	Model     string `json:"model"`
	Status    int    `json:"status"`
	ErrorType string `json:"error_type,omitempty"`
	LatencyMs int64  `json:"latency"`
	// Class: served, or for a failure not_sent, refused or uncertain
	// (whether the provider may bill it).
	Class string `json:"class,omitempty"`
}

// Start marks a stream whose id went out to its client before its record
// exists, so that the id resolves (as an interrupted request) even if this
// replica dies before writing the record.
type Start struct {
	ID, WorkspaceID, KeyID, MemberID, RequestedModel string
	CreatedAt                                        time.Time
}

// Bounds of stored text, in bytes.
const (
	maxID    = 128 // ids the gateway or an upstream made
	maxName  = 256 // model and provider names
	maxShort = 64  // finish reasons, error types
	maxAttr  = 256 // user, session id
	// The request's metadata, as the API bounds it (16 pairs, keys of 64
	// and values of 512 characters); bytes here.
	maxMetadata      = 16
	maxMetadataKey   = 256
	maxMetadataValue = 2048
	maxNote          = 512 // anomaly
)

// Sanitized returns g with every text field valid UTF-8, free of NUL and
// bounded (cut on a character boundary): whatever the client, its headers or
// the upstream sent, the database accepts the row.
func (g Generation) Sanitized() Generation {
	for _, f := range []struct {
		p   *string
		max int
	}{
		{&g.ID, maxID}, {&g.WorkspaceID, maxID}, {&g.KeyID, maxID}, {&g.MemberID, maxID},
		{&g.RequestedModel, maxName}, {&g.Model, maxName}, {&g.Provider, maxName}, {&g.UpstreamID, maxID},
		{&g.User, maxAttr}, {&g.SessionID, maxAttr}, {&g.ErrorType, maxShort},
		{&g.FinishReason, maxShort}, {&g.NativeFinishReason, maxShort}, {&g.Anomaly, maxNote},
	} {
		*f.p = safetext.Clean(*f.p, f.max)
	}
	g.App = g.App.Sanitized()
	if len(g.Metadata) > 0 {
		md := make(map[string]string, min(len(g.Metadata), maxMetadata))
		for _, k := range slices.Sorted(maps.Keys(g.Metadata)) {
			if len(md) == maxMetadata {
				break
			}
			md[safetext.Clean(k, maxMetadataKey)] = safetext.Clean(g.Metadata[k], maxMetadataValue)
		}
		g.Metadata = md
	}
	if len(g.Attempts) > 0 {
		as := make([]Attempt, len(g.Attempts))
		for i, a := range g.Attempts {
			a.Provider, a.Model = safetext.Clean(a.Provider, maxName), safetext.Clean(a.Model, maxName)
			a.ErrorType = safetext.Clean(a.ErrorType, maxShort)
			as[i] = a
		}
		g.Attempts = as
	}
	return g
}

// stripped is g without any free text: what is kept when the database still
// refuses the sanitised row, so its spend and counts are never lost.
func (g Generation) stripped() Generation {
	g.UpstreamID, g.App, g.User, g.SessionID, g.Metadata = "", attribution.App{}, "", "", nil
	g.FinishReason, g.NativeFinishReason, g.Attempts, g.Routing = "", "", nil, nil
	g.Anomaly = "text fields dropped: the database refused them"
	return g
}
