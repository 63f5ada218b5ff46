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

// Store reads the aggregates of a workspace in [from, to); member, when
// set, restricts the rows to that member's keys.
type Store interface {
	UsageRows(ctx context.Context, workspaceID string, from, to time.Time, member string) ([]Row, error)
	GuardrailUsageRows(ctx context.Context, workspaceID string, from, to time.Time) ([]GuardrailRow, error)
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
	rows, err := s.store.UsageRows(ctx, caller.WorkspaceID, q.From, q.To, member)
	if err != nil {
		return Report{}, err
	}
	groups := map[string]*Group{}
	for _, r := range rows {
		d := r.Dims
		if d.App == "" {
			d.App = Unattributed
		}
		if d.Provider == "" {
			d.Provider = None
		}
		if !q.matches(d) {
			continue
		}
		id := map[string]string{ByApp: d.App, ByModel: d.Model, ByProvider: d.Provider, ByKey: d.Key, ByMember: d.Member}[q.Dimension]
		rep.add(groups, id, d.Model, r.Hour, r.Sums)
	}
	rep.Groups = sorted(groups)
	return rep, nil
}

func (q Query) matches(d Dims) bool {
	for _, f := range [][2]string{{q.App, d.App}, {q.Model, d.Model}, {q.Provider, d.Provider}, {q.Key, d.Key}, {q.Member, d.Member}} {
		if f[0] != "" && f[0] != f[1] {
			return false
		}
	}
	return true
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
	if n := len(g.Series); n > 0 && g.Series[n-1].Start.Equal(start) {
		g.Series[n-1].Sums.Add(s)
		return
	}
	p := Point{Start: start}
	p.Sums.Add(s)
	g.Series = append(g.Series, p) // rows come in hour order
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
	member := ""
	if !access.Can(caller.Role, access.ReadAllGenerations) {
		member = caller.MemberID
	}
	rows, err := s.store.UsageRows(ctx, caller.WorkspaceID, from, to, member)
	if err != nil {
		return nil, err
	}
	type key struct {
		day             time.Time
		model, provider string
	}
	byKey := map[key]*ActivityRow{}
	for _, r := range rows {
		if r.Provider == "" {
			continue // nothing served: nothing to bill
		}
		k := key{bucketStart(r.Hour, "day"), r.Model, r.Provider}
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
