package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/perpetuo/perpetuo/internal/records"
)

// Metrics are the gateway's Prometheus collectors.
type Metrics struct {
	attempts    *prometheus.CounterVec
	generations *prometheus.CounterVec
	tokens      *prometheus.CounterVec
	ttft        *prometheus.HistogramVec
}

// NewMetrics registers the gateway's collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perpetuo_upstream_attempts_total", Help: "Upstream calls by provider and outcome status.",
		}, []string{"provider", "status"}),
		generations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perpetuo_generations_total", Help: "Finished generations by provider, status and error type.",
		}, []string{"provider", "status", "error_type"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "perpetuo_tokens_total", Help: "Tokens by provider and kind (prompt, completion).",
		}, []string{"provider", "kind"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "perpetuo_time_to_first_token_seconds", Help: "Time to first streamed token, by provider.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"provider"}),
	}
	reg.MustRegister(m.attempts, m.generations, m.tokens, m.ttft)
	return m
}

func (m *Metrics) attempt(a records.Attempt) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(a.Provider, strconv.Itoa(a.Status)).Inc()
}

func (m *Metrics) generation(g records.Generation) {
	if m == nil {
		return
	}
	m.generations.WithLabelValues(g.Provider, strconv.Itoa(g.Status), g.ErrorType).Inc()
	m.tokens.WithLabelValues(g.Provider, "prompt").Add(float64(g.PromptTokens))
	m.tokens.WithLabelValues(g.Provider, "completion").Add(float64(g.CompletionTokens))
	if g.TTFT > 0 {
		m.ttft.WithLabelValues(g.Provider).Observe(g.TTFT.Seconds())
	}
}
