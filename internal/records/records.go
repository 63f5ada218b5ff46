// Package records keeps the generation records: one per inference request,
// holding counts, costs, timings, identifiers and attribution, never prompt
// or completion text.
//
// Records are written off the request's critical path by a Recorder that
// batches them, and are readable from the moment the response ended: the
// Recorder serves records it has not flushed yet from memory.
package records

import (
	"time"

	"github.com/shopspring/decimal"
)

// Generation is one request's record.
type Generation struct {
	ID                 string
	WorkspaceID        string
	KeyID              string
	MemberID           string
	RequestedModel     string
	Model              string // "" when no endpoint served it
	Provider           string
	UpstreamID         string
	App                string
	User               string
	SessionID          string
	Streamed           bool
	Cancelled          bool
	Status             int
	ErrorType          string
	FinishReason       string
	NativeFinishReason string
	PromptTokens       int
	CompletionTokens   int
	ReasoningTokens    int
	CachedTokens       int
	Cost               decimal.Decimal
	BYOK               bool
	Latency            time.Duration
	TTFT               time.Duration // 0 when not streamed or no token arrived
	Attempts           []Attempt
	CreatedAt          time.Time
}

// Attempt is one upstream call of a generation.
type Attempt struct {
	Provider  string `json:"provider"`
	Model     string `json:"model"`
	Status    int    `json:"status"`
	ErrorType string `json:"error_type,omitempty"`
	LatencyMs int64  `json:"latency"`
}
