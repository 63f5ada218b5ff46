package analytics

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/keys"
)

// Dimensions the reports group by.
const (
	ByApp       = "apps"
	ByModel     = "models"
	ByProvider  = "providers"
	ByKey       = "keys"
	ByMember    = "members"
	ByGuardrail = "guardrails"
)

// Unattributed is the app id of traffic without attribution headers, and
// None the provider of requests no endpoint served.
const (
	Unattributed = "unattributed"
	None         = "none"
)

// Store reads the aggregates of a workspace, grouped in the database.
type Store interface {
	// UsageGroups sums the hourly rows of [from, to) that pass f, per
	// the dimension's value (dimension "" groups everything together),
	// time bucket (granularity "": one bucket), model and provider; and
	// their histograms per group, bucket and histogram bucket.
	UsageGroups(ctx context.Context, workspaceID, dimension, granularity string, from, to time.Time, f Filter) ([]SumRow, []HistRow, error)
	GuardrailUsageRows(ctx context.Context, workspaceID string, from, to time.Time) ([]GuardrailRow, error)
}

// Filter restricts the rows read; nil is no filter, "" matches the
// unattributed app or the unserved provider.
type Filter struct {
	App, Model, Provider, Key, Member *string
}

// SumRow is one group, bucket, model and provider's sums (histograms
// apart).
type SumRow struct {
	ID              string
	Bucket          time.Time
	Model, Provider string
	Sums
}

// HistRow is one histogram bucket's count for a group and time bucket;
// TTFT says which histogram.
type HistRow struct {
	ID     string
	Bucket time.Time
	TTFT   bool
	Index  int
	N      int64
}

// Query is what a report covers.
type Query struct {
	Dimension   string
	From, To    time.Time // zero: the last 7 days
	Granularity string    // "", hour, day, week, month
	// Filters; "" is none (App may be Unattributed, Provider None).
	App, Model, Provider, Key, Member string
}

// Group is one line of a report.
type Group struct {
	ID     string
	Models []string
	Sums
	Series []Point
}

// Point is one bucket of a group's series.
type Point struct {
	Start time.Time
	Sums
}

// Report is a report's groups, most costly first.
type Report struct {
	Query
	Groups []Group
}

// Service builds reports.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service; now may be nil.
func NewService(st Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, now: now}
}

// maxSpan bounds a report: hourly rows over more than a year are not read
// in one request.
const maxSpan = 366 * 24 * time.Hour

// Report builds the report q asks for, for the caller's workspace.
func (s *Service) Report(ctx context.Context, caller keys.Key, q Query) (Report, error) {
	if err := access.Require(caller.Role, access.ReadWorkspace); err != nil {
		return Report{}, err
	}
	own := !access.Can(caller.Role, access.ReadAllGenerations) // members: their own keys only
	if own && q.Dimension == ByGuardrail {
		return Report{}, access.Require(caller.Role, access.ReadAllGenerations)
	}
	if q.To.IsZero() {
		q.To = s.now()
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-7 * 24 * time.Hour)
	}
	q.From, q.To = q.From.UTC().Truncate(time.Hour), q.To.UTC()
	switch {
	case !q.To.After(q.From):
		return Report{}, invalid("/to", "to must be after from.")
	case q.To.Sub(q.From) > maxSpan:
		return Report{}, invalid("/from", "A report covers at most 366 days; narrow from and to.")
	}
	member := ""
	if own {
		member = caller.MemberID
	}
	rep := Report{Query: q}
	if q.Dimension == ByGuardrail {
		rows, err := s.store.GuardrailUsageRows(ctx, caller.WorkspaceID, q.From, q.To)
		if err != nil {
			return Report{}, err
		}
		groups := map[string]*Group{}
		for _, r := range rows {
			rep.add(groups, r.Guardrail, "", r.Hour, r.Sums)
		}
		rep.Groups = sorted(groups)
		return rep, nil
	}
	f := q.filter()
	if member != "" {
		if q.Member != "" && q.Member != member {
			return rep, nil // another member's keys: nothing to show
		}
		f.Member = &member
	}
	sums, hists, err := s.store.UsageGroups(ctx, caller.WorkspaceID, q.Dimension, q.Granularity, q.From, q.To, f)
	if err != nil {
		return Report{}, err
	}
	groups := map[string]*Group{}
	for _, r := range sums {
		rep.add(groups, q.label(r.ID), r.Model, r.Bucket, r.Sums)
	}
	for _, h := range hists {
		g := groups[q.label(h.ID)]
		if g == nil {
			continue
		}
		rep.addHist(g, h)
	}
	rep.Groups = sorted(groups)
	return rep, nil
}

// filter is the query's filters for the store: Unattributed and None
// stand for the empty app and provider.
func (q Query) filter() Filter {
	opt := func(v, empty string) *string {
		switch v {
		case "":
			return nil
		case empty:
			v = ""
		}
		return &v
	}
	return Filter{App: opt(q.App, Unattributed), Model: opt(q.Model, ""), Provider: opt(q.Provider, None),
		Key: opt(q.Key, ""), Member: opt(q.Member, "")}
}

// label is how a group's id is shown: the empty app is Unattributed, the
// empty provider None.
func (q Query) label(id string) string {
	switch {
	case id == "" && q.Dimension == ByApp:
		return Unattributed
	case id == "" && q.Dimension == ByProvider:
		return None
	}
	return id
}

// addHist counts one histogram bucket into its group and series point.
func (rep *Report) addHist(g *Group, h HistRow) {
	bump := func(s *Sums) {
		if s.Latency == nil {
			s.Latency, s.TTFT = make([]int64, Buckets), make([]int64, Buckets)
		}
		if h.Index < 0 || h.Index >= Buckets {
			return
		}
		if h.TTFT {
			s.TTFT[h.Index] += h.N
		} else {
			s.Latency[h.Index] += h.N
		}
	}
	bump(&g.Sums)
	if rep.Granularity == "" {
		return
	}
	for i := range g.Series {
		if g.Series[i].Start.Equal(h.Bucket) {
			bump(&g.Series[i].Sums)
			return
		}
	}
}

// add counts one aggregate row into its group (and the group's series).
func (rep *Report) add(groups map[string]*Group, id, model string, hour time.Time, s Sums) {
	g := groups[id]
	if g == nil {
		g = &Group{ID: id}
		groups[id] = g
	}
	g.Sums.Add(s)
	if model != "" && !slices.Contains(g.Models, model) {
		g.Models = append(g.Models, model)
	}
	if rep.Granularity == "" {
		return
	}
	start := bucketStart(hour, rep.Granularity)
	for i := range g.Series {
		if g.Series[i].Start.Equal(start) {
			g.Series[i].Sums.Add(s)
			return
		}
	}
	p := Point{Start: start}
	p.Sums.Add(s)
	g.Series = append(g.Series, p)
	slices.SortFunc(g.Series, func(a, b Point) int { return a.Start.Compare(b.Start) })
}

// bucketStart is the UTC start of the bucket holding hour.
func bucketStart(hour time.Time, granularity string) time.Time {
	h := hour.UTC()
	switch granularity {
	case "day":
		return time.Date(h.Year(), h.Month(), h.Day(), 0, 0, 0, 0, time.UTC)
	case "week":
		d := time.Date(h.Year(), h.Month(), h.Day(), 0, 0, 0, 0, time.UTC)
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)) // back to Monday
	case "month":
		return time.Date(h.Year(), h.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return h.Truncate(time.Hour)
}

func sorted(groups map[string]*Group) []Group {
	out := make([]Group, 0, len(groups))
	for _, g := range groups {
		slices.Sort(g.Models)
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int {
		return cmp.Or(b.Cost.Add(b.BYOKCost).Cmp(a.Cost.Add(a.BYOKCost)), cmp.Compare(b.Requests, a.Requests), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// ActivityRow is one day of one model on one provider.
type ActivityRow struct {
	Date            time.Time
	Model, Provider string
	Sums
}

// Activity is the caller's workspace's usage per UTC day, model and
// provider over the 30 days before now (or on day, when set), newest
// first.
func (s *Service) Activity(ctx context.Context, caller keys.Key, day time.Time) ([]ActivityRow, error) {
	if err := access.Require(caller.Role, access.ReadWorkspace); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	to := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)
	from := to.AddDate(0, 0, -30)
	if !day.IsZero() {
		d := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
		if d.Before(from) || !d.Before(to) {
			return nil, invalid("/date", "date must be one of the last 30 UTC days.")
		}
		from, to = d, d.AddDate(0, 0, 1)
	}
	var f Filter
	if !access.Can(caller.Role, access.ReadAllGenerations) {
		f.Member = &caller.MemberID
	}
	sums, _, err := s.store.UsageGroups(ctx, caller.WorkspaceID, "", "day", from, to, f)
	if err != nil {
		return nil, err
	}
	type key struct {
		day             time.Time
		model, provider string
	}
	byKey := map[key]*ActivityRow{}
	for _, r := range sums {
		if r.Provider == "" {
			continue // nothing served: nothing to bill
		}
		k := key{r.Bucket.UTC(), r.Model, r.Provider}
		a := byKey[k]
		if a == nil {
			a = &ActivityRow{Date: k.day, Model: k.model, Provider: k.provider}
			byKey[k] = a
		}
		a.Sums.Add(r.Sums)
	}
	out := make([]ActivityRow, 0, len(byKey))
	for _, a := range byKey {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b ActivityRow) int {
		return cmp.Or(b.Date.Compare(a.Date), cmp.Compare(a.Model, b.Model), cmp.Compare(a.Provider, b.Provider))
	})
	return out, nil
}

func invalid(field, msg string) *apierr.Error {
	return apierr.New(http.StatusBadRequest, apierr.InvalidRequest, "%s", msg).With("field", field)
}
