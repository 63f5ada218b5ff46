package mockupstream

import (
	"flag"
	"time"
)

// Config controls the mock's behaviour. Zero value = fast, never fails.
type Config struct {
	// Latency is, for non-streaming requests, the delay before the response;
	// for streaming requests it is added to the time to first token.
	Latency time.Duration
	// TTFT is the time to first token: for streaming requests the delay
	// before the first chunk (and the response headers); non-streaming
	// requests wait it too, on top of Latency.
	TTFT time.Duration
	// TokensPerSecond paces streamed content chunks (0 = as fast as
	// possible).
	TokensPerSecond float64
	// FailureRate is the probability, from 0 to 1, that a chat completion
	// request fails before any output.
	FailureRate float64
	// FailureStatus is the status of those failures (default 500); 429 adds
	// "Retry-After: 1".
	FailureStatus int
	// MidStreamFailAfter aborts streams abruptly after that many content
	// chunks (0 = never).
	MidStreamFailAfter int
	// APIKey, if set, must be sent as "Authorization: Bearer <APIKey>", else
	// requests get 401 in OpenAI's error format.
	APIKey string
	// Seed seeds the random source behind FailureRate, for deterministic
	// tests.
	Seed int64
}

// RegisterFlags binds c's fields to flags on fs, with c's current values as
// defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.Latency, "latency", c.Latency,
		"delay before a non-streaming response, added to the time to first token when streaming")
	fs.DurationVar(&c.TTFT, "ttft", c.TTFT, "time to first token")
	fs.Float64Var(&c.TokensPerSecond, "tokens-per-second", c.TokensPerSecond,
		"pacing of streamed content chunks (0 = as fast as possible)")
	fs.Float64Var(&c.FailureRate, "failure-rate", c.FailureRate,
		"probability (0..1) that a request fails before any output")
	fs.IntVar(&c.FailureStatus, "failure-status", c.FailureStatus,
		"HTTP status of random failures (0 = 500)")
	fs.IntVar(&c.MidStreamFailAfter, "mid-stream-fail-after", c.MidStreamFailAfter,
		"abort streams after this many content chunks (0 = never)")
	fs.StringVar(&c.APIKey, "api-key", c.APIKey, "required bearer token (empty = no authentication)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of the failure-rate random source")
}
