package mockupstream

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request headers overriding the configuration for one request.
const (
	headerFail               = "X-Mock-Fail"
	headerMidStreamFailAfter = "X-Mock-Mid-Stream-Fail-After"
	headerTTFT               = "X-Mock-TTFT"
	headerLatency            = "X-Mock-Latency"
)

const (
	midstreamFailChunks = 3
	slowTTFT            = 2 * time.Second
)

// plan is the behaviour chosen for one request.
type plan struct {
	failStatus         int // 0 = do not fail
	latency            time.Duration
	ttft               time.Duration
	tokensPerSecond    float64
	midStreamFailAfter int
	// midStreamError sends an error event after midstreamFailChunks
	// content chunks and ends the stream.
	midStreamError bool
}

// planFor resolves the configuration, then the model name, then the
// request headers into the behaviour of one request.
func (s *server) planFor(r *http.Request, model string) (plan, error) {
	p := plan{
		latency:            s.cfg.Latency,
		ttft:               s.cfg.TTFT,
		tokensPerSecond:    s.cfg.TokensPerSecond,
		midStreamFailAfter: s.cfg.MidStreamFailAfter,
	}
	applyModel(&p, model)
	if err := applyHeaders(&p, r.Header); err != nil {
		return plan{}, err
	}
	if p.failStatus == 0 && s.roll() {
		p.failStatus = s.cfg.FailureStatus
		if p.failStatus == 0 {
			p.failStatus = http.StatusInternalServerError
		}
	}
	return p, nil
}

// applyModel applies the behaviour selected by the model name's suffix.
func applyModel(p *plan, model string) {
	switch {
	case strings.HasSuffix(model, "midstream-fail"):
		p.midStreamFailAfter = midstreamFailChunks
	case strings.HasSuffix(model, "midstream-error"):
		p.midStreamError = true
	case strings.HasSuffix(model, "slow"):
		p.ttft = slowTTFT
	default:
		if i := strings.LastIndex(model, "fail-"); i >= 0 {
			if status, err := parseStatus(model[i+len("fail-"):]); err == nil {
				p.failStatus = status
			}
		}
	}
}

// applyHeaders applies the X-Mock-* request headers.
func applyHeaders(p *plan, h http.Header) error {
	if v := h.Get(headerFail); v != "" {
		status, err := parseStatus(v)
		if err != nil {
			return fmt.Errorf("invalid %s header: %w", headerFail, err)
		}
		p.failStatus = status
	}
	if v := h.Get(headerMidStreamFailAfter); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid %s header: %q is not a chunk count", headerMidStreamFailAfter, v)
		}
		p.midStreamFailAfter = n
	}
	if err := durationHeader(h, headerTTFT, &p.ttft); err != nil {
		return err
	}
	return durationHeader(h, headerLatency, &p.latency)
}

// durationHeader sets *dst from header name when the request carries it.
func durationHeader(h http.Header, name string, dst *time.Duration) error {
	v := h.Get(name)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return fmt.Errorf("invalid %s header: %q is not a duration", name, v)
	}
	*dst = d
	return nil
}

// parseStatus parses an HTTP error status (400 to 599).
func parseStatus(s string) (int, error) {
	status, err := strconv.Atoi(s)
	if err != nil || status < 400 || status > 599 {
		return 0, fmt.Errorf("%q is not an error status (400-599)", s)
	}
	return status, nil
}

// roll reports whether a request should fail at random.
func (s *server) roll() bool {
	if s.cfg.FailureRate <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < s.cfg.FailureRate
}
