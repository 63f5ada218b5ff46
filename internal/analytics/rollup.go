// Package analytics is where spend, tokens, errors and speed are summed for
// the analytics routes: the aggregates the record writer maintains with
// every batch of generation records (per UTC hour, app, model, provider,
// key and member, and per governing guardrail), and the reports read from
// them.
//
// Latency and time to first token are kept as histograms of fixed
// log-scale buckets, which add up exactly across rows, replicas and hours;
// a percentile read from them is the upper bound of the bucket it falls in,
// at most 19% (2^(1/4)) above the true value.
package analytics

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/records"
)

// Buckets is the number of histogram buckets: bucket i counts values up to
// 2^(i/4) ms, the last everything above 2^(78/4) ms (about 13 minutes).
const Buckets = 80

// Bucket is the histogram bucket of a duration in milliseconds.
func Bucket(ms int64) int {
	if ms <= 1 {
		return 0
	}
	return min(int(math.Ceil(4*math.Log2(float64(ms)))), Buckets-1)
}

// UpperBound is the largest value, in milliseconds, bucket i holds.
func UpperBound(i int) float64 { return math.Pow(2, float64(i)/4) }

// Percentile reads quantile q (0 < q <= 1) from a histogram, in
// milliseconds; 0 when it is empty.
func Percentile(hist []int64, q float64) float64 {
	var total int64
	for _, n := range hist {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, n := range hist {
		if seen += n; seen >= rank {
			return math.Round(UpperBound(i)*10) / 10
		}
	}
	return math.Round(UpperBound(len(hist)-1)*10) / 10
}

// Sums are what an aggregate row adds up.
type Sums struct {
	Requests, Errors                                int64
	PromptTokens, CompletionTokens, ReasoningTokens int64
	Cost, BYOKCost                                  decimal.Decimal
	Latency, TTFT                                   []int64 // histograms of Buckets
}

// Add adds o to s.
func (s *Sums) Add(o Sums) {
	s.Requests += o.Requests
	s.Errors += o.Errors
	s.PromptTokens += o.PromptTokens
	s.CompletionTokens += o.CompletionTokens
	s.ReasoningTokens += o.ReasoningTokens
	s.Cost, s.BYOKCost = s.Cost.Add(o.Cost), s.BYOKCost.Add(o.BYOKCost)
	s.Latency, s.TTFT = addHist(s.Latency, o.Latency), addHist(s.TTFT, o.TTFT)
}

func addHist(a, b []int64) []int64 {
	if a == nil {
		a = make([]int64, Buckets)
	}
	for i := range min(len(a), len(b)) {
		a[i] += b[i]
	}
	return a
}

// addRecord adds one record's contribution, with no allocation beyond the
// histograms' first use (a batch's records share their rows' histograms).
func (s *Sums) addRecord(g records.Generation) {
	s.Requests++
	if g.Status >= 400 || g.ErrorType != "" {
		s.Errors++
	}
	s.PromptTokens += int64(g.PromptTokens)
	s.CompletionTokens += int64(g.CompletionTokens)
	s.ReasoningTokens += int64(g.ReasoningTokens)
	if g.BYOK {
		s.BYOKCost = s.BYOKCost.Add(g.Cost)
	} else {
		s.Cost = s.Cost.Add(g.Cost)
	}
	if s.Latency == nil {
		s.Latency, s.TTFT = make([]int64, Buckets), make([]int64, Buckets)
	}
	s.Latency[Bucket(g.Latency.Milliseconds())]++
	if g.TTFT > 0 {
		s.TTFT[Bucket(g.TTFT.Milliseconds())]++
	}
}

// Dims are what an hourly row is keyed by, besides its workspace and hour.
type Dims struct {
	App, Model, Provider, Key, Member string
}

// Row is one hourly aggregate.
type Row struct {
	Workspace string
	Hour      time.Time
	Dims
	Sums
}

// GuardrailRow is one hourly aggregate of a governing guardrail.
type GuardrailRow struct {
	Workspace, Guardrail string
	Hour                 time.Time
	Sums
}

// Rollup sums a batch of records into hourly rows, sorted by key so that
// concurrent writers update shared rows in one order.
func Rollup(gs []records.Generation) ([]Row, []GuardrailRow) {
	type key struct {
		ws   string
		hour time.Time
		d    Dims
	}
	type gkey struct {
		ws, g string
		hour  time.Time
	}
	rows, grows := map[key]*Sums{}, map[gkey]*Sums{}
	for _, g := range gs {
		hour := g.CreatedAt.UTC().Truncate(time.Hour)
		k := key{g.WorkspaceID, hour, Dims{App: g.App.ID, Model: cmp.Or(g.Model, g.RequestedModel), Provider: g.Provider,
			Key: g.KeyID, Member: g.MemberID}}
		if rows[k] == nil {
			rows[k] = &Sums{}
		}
		rows[k].addRecord(g)
		for _, id := range g.Guardrails {
			gk := gkey{g.WorkspaceID, id, hour}
			if grows[gk] == nil {
				grows[gk] = &Sums{}
			}
			grows[gk].addRecord(g)
		}
	}
	out := make([]Row, 0, len(rows))
	for k, s := range rows {
		out = append(out, Row{Workspace: k.ws, Hour: k.hour, Dims: k.d, Sums: *s})
	}
	slices.SortFunc(out, func(a, b Row) int {
		return cmp.Or(strings.Compare(a.Workspace, b.Workspace), a.Hour.Compare(b.Hour), strings.Compare(a.App, b.App),
			strings.Compare(a.Model, b.Model), strings.Compare(a.Provider, b.Provider), strings.Compare(a.Key, b.Key),
			strings.Compare(a.Member, b.Member))
	})
	gout := make([]GuardrailRow, 0, len(grows))
	for k, s := range grows {
		gout = append(gout, GuardrailRow{Workspace: k.ws, Guardrail: k.g, Hour: k.hour, Sums: *s})
	}
	slices.SortFunc(gout, func(a, b GuardrailRow) int {
		return cmp.Or(strings.Compare(a.Workspace, b.Workspace), a.Hour.Compare(b.Hour), strings.Compare(a.Guardrail, b.Guardrail))
	})
	return out, gout
}

// HistJSON is a histogram as stored: a sparse jsonb object of its
// non-empty buckets, {"<bucket>": count}.
func HistJSON(h []int64) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range h {
		if n == 0 {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(strconv.Itoa(i))
		b.WriteString(`":`)
		b.WriteString(strconv.FormatInt(n, 10))
	}
	b.WriteByte('}')
	return b.String()
}

// HistOf reads a stored histogram back; buckets out of range are dropped.
func HistOf(sparse map[string]int64) []int64 {
	h := make([]int64, Buckets)
	for k, n := range sparse {
		if i, err := strconv.Atoi(k); err == nil && i >= 0 && i < Buckets {
			h[i] += n
		}
	}
	return h
}
