package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/analytics"
	"github.com/perpetuo/perpetuo/internal/attribution"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/records"
)

// InsertGenerations implements records.Store. A batch is written with COPY,
// its key usage rollups and the removal of its stream start markers in the
// same transaction (a few rows each: the sums are per key and day). A
// batch retried after a commit whose answer was lost finds its rows there:
// COPY fails on the primary key; the batch then leaves out the rows that
// exist and writes, and counts, only the new ones.
func (s *Store) InsertGenerations(ctx context.Context, gs []records.Generation) error {
	err := s.copyGenerations(ctx, gs)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.TableName == "generations" {
		return s.insertNewGenerations(ctx, gs)
	}
	if err != nil {
		return fmt.Errorf("copy %d generations: %w", len(gs), rejected(err))
	}
	return nil
}

// copyGenerations is InsertGenerations' fast path.
func (s *Store) copyGenerations(ctx context.Context, gs []records.Generation) error {
	rows := make([]db.GenerationCopyParams, len(gs))
	type day struct {
		key string
		at  time.Time
	}
	spent := map[day]*[2]decimal.Decimal{} // usage, byok usage
	var days []day
	ids := make([]string, len(gs))
	for i, g := range gs {
		attempts, err := attemptsJSON(g)
		if err != nil {
			return err
		}
		var ttft *int32 // none
		if ms := ttftMillis(g.TTFT); ms > 0 {
			ttft = &ms
		}
		rows[i] = db.GenerationCopyParams{ID: g.ID, WorkspaceID: g.WorkspaceID, KeyID: g.KeyID, MemberID: g.MemberID,
			RequestedModel: g.RequestedModel, Model: ptr(g.Model), Provider: ptr(g.Provider), UpstreamID: ptr(g.UpstreamID),
			App: ptr(g.App.ID), EndUser: ptr(g.User), SessionID: ptr(g.SessionID), Streamed: g.Streamed, Cancelled: g.Cancelled,
			Status: int32(g.Status), ErrorType: ptr(g.ErrorType), FinishReason: ptr(g.FinishReason),
			NativeFinishReason: ptr(g.NativeFinishReason), PromptTokens: int32(g.PromptTokens),
			CompletionTokens: int32(g.CompletionTokens), ReasoningTokens: int32(g.ReasoningTokens), CachedTokens: int32(g.CachedTokens),
			CacheWriteTokens: int32(g.CacheWriteTokens), CostUsd: g.Cost, IsByok: g.BYOK, LatencyMs: int32(g.Latency.Milliseconds()), TtftMs: ttft, Attempts: attempts,
			CreatedAt: g.CreatedAt, UsageEstimated: g.UsageEstimated, Anomaly: ptr(g.Anomaly), Routing: nilIfEmpty(g.Routing), Zdr: g.ZDR,
			AppTitle: ptr(g.App.Title), HttpReferer: ptr(g.App.Referer), AppCategories: orEmpty(g.App.Categories),
			ClientName: ptr(g.App.ClientName), ClientVersion: ptr(g.App.ClientVersion), Metadata: metadataJSON(g.Metadata)}
		at := g.CreatedAt.UTC()
		d := day{g.KeyID, time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)}
		sum := spent[d]
		if sum == nil {
			sum = &[2]decimal.Decimal{}
			spent[d] = sum
			days = append(days, d)
		}
		if g.BYOK {
			sum[1] = sum[1].Add(g.Cost)
		} else {
			sum[0] = sum[0].Add(g.Cost)
		}
		ids[i] = g.ID
	}
	var add db.KeyUsageAddParams
	for _, d := range days {
		add.KeyID, add.Day = append(add.KeyID, d.key), append(add.Day, d.at)
		add.Usage, add.ByokUsage = append(add.Usage, spent[d][0].String()), append(add.ByokUsage, spent[d][1].String())
	}
	hourly, guarded := usageParams(gs)
	return s.tx(ctx, func(_ pgx.Tx, q *db.Queries) error {
		if _, err := q.GenerationCopy(ctx, rows); err != nil {
			return err
		}
		if err := q.KeyUsageAdd(ctx, add); err != nil {
			return err
		}
		if err := q.UsageHourlyAdd(ctx, hourly); err != nil {
			return err
		}
		if err := q.UsageGuardrailAdd(ctx, guarded); err != nil {
			return err
		}
		// A start marker may exist for any record whose id a client holds.
		return q.GenerationStartDelete(ctx, ids)
	})
}

// attemptsJSON is g's attempts as the JSON array stored with it.
func attemptsJSON(g records.Generation) ([]byte, error) {
	if g.Attempts == nil {
		return []byte("[]"), nil
	}
	b, err := json.Marshal(g.Attempts)
	if err != nil {
		return nil, fmt.Errorf("encode attempts of %s: %w", g.ID, err)
	}
	return b, nil
}

// ttftMillis is a time to first token in whole milliseconds, at least 1 when
// there was one: 0 means none.
func ttftMillis(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return max(int32(d.Milliseconds()), 1)
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// insertNewGenerations writes what a batch holds that is not written yet:
// a batch retried after a commit whose answer was lost finds some or all of
// its rows there, and its usage rollups and aggregates must grow by the
// others only.
func (s *Store) insertNewGenerations(ctx context.Context, gs []records.Generation) error {
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	written, err := s.q.GenerationExistingIDs(ctx, ids)
	if err != nil {
		return fmt.Errorf("find written generations: %w", err)
	}
	rest := slices.DeleteFunc(slices.Clone(gs), func(g records.Generation) bool { return slices.Contains(written, g.ID) })
	if len(rest) == 0 {
		return s.q.GenerationStartDelete(ctx, ids)
	}
	if err := s.copyGenerations(ctx, rest); err != nil {
		return fmt.Errorf("copy %d generations: %w", len(rest), rejected(err))
	}
	return nil
}

// usageParams are a batch's analytics aggregates as the upserts take them.
func usageParams(gs []records.Generation) (db.UsageHourlyAddParams, db.UsageGuardrailAddParams) {
	rows, grows := analytics.Rollup(gs)
	var h db.UsageHourlyAddParams
	for _, r := range rows {
		h.WorkspaceID, h.Hour = append(h.WorkspaceID, r.Workspace), append(h.Hour, r.Hour)
		h.AppID, h.Model, h.Provider = append(h.AppID, r.App), append(h.Model, r.Model), append(h.Provider, r.Provider)
		h.KeyID, h.MemberID = append(h.KeyID, r.Key), append(h.MemberID, r.Member)
		h.Requests, h.Errors = append(h.Requests, r.Requests), append(h.Errors, r.Errors)
		h.PromptTokens, h.CompletionTokens = append(h.PromptTokens, r.PromptTokens), append(h.CompletionTokens, r.CompletionTokens)
		h.ReasoningTokens = append(h.ReasoningTokens, r.ReasoningTokens)
		h.CostUsd, h.ByokCostUsd = append(h.CostUsd, r.Cost.String()), append(h.ByokCostUsd, r.BYOKCost.String())
		h.LatencyHist, h.TtftHist = append(h.LatencyHist, analytics.HistJSON(r.Latency)), append(h.TtftHist, analytics.HistJSON(r.TTFT))
	}
	var g db.UsageGuardrailAddParams
	for _, r := range grows {
		g.WorkspaceID, g.Hour, g.GuardrailID = append(g.WorkspaceID, r.Workspace), append(g.Hour, r.Hour), append(g.GuardrailID, r.Guardrail)
		g.Requests, g.Errors = append(g.Requests, r.Requests), append(g.Errors, r.Errors)
		g.PromptTokens, g.CompletionTokens = append(g.PromptTokens, r.PromptTokens), append(g.CompletionTokens, r.CompletionTokens)
		g.ReasoningTokens = append(g.ReasoningTokens, r.ReasoningTokens)
		g.CostUsd, g.ByokCostUsd = append(g.CostUsd, r.Cost.String()), append(g.ByokCostUsd, r.BYOKCost.String())
		g.LatencyHist, g.TtftHist = append(g.LatencyHist, analytics.HistJSON(r.Latency)), append(g.TtftHist, analytics.HistJSON(r.TTFT))
	}
	return h, g
}

// InsertStarts implements records.Store.
func (s *Store) InsertStarts(ctx context.Context, replica string, ss []records.Start) error {
	rows := make([]db.GenerationStartInsertParams, len(ss))
	for i, st := range ss {
		rows[i] = db.GenerationStartInsertParams{ID: st.ID, WorkspaceID: st.WorkspaceID, KeyID: st.KeyID,
			MemberID: st.MemberID, RequestedModel: st.RequestedModel, ReplicaID: replica, CreatedAt: st.CreatedAt}
	}
	var first error
	br := s.q.GenerationStartInsert(ctx, rows)
	br.Exec(func(i int, err error) {
		if err != nil && first == nil {
			first = fmt.Errorf("insert start %s: %w", rows[i].ID, err)
		}
	})
	if err := br.Close(); err != nil && first == nil {
		first = fmt.Errorf("insert starts: %w", err)
	}
	return first
}

// rejected marks err as records.ErrRejected when PostgreSQL refused the
// rows themselves (bad data, a constraint) rather than being unreachable,
// overloaded or shutting down, so the recorder retries row by row instead of
// retrying the batch forever. Only the SQLSTATE is kept: a database message
// may quote the value, and records hold user-supplied text.
func rejected(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code[:2] {
	case "08", "40", "53", "55", "57", "58", "XX": // connection, rollback, resources, lock, shutdown, system
		return err
	}
	return fmt.Errorf("%w (SQLSTATE %s)", records.ErrRejected, pe.Code)
}

// Generation implements records.Store.
func (s *Store) Generation(ctx context.Context, workspaceID, id string) (records.Generation, error) {
	r, err := s.q.GenerationGetByID(ctx, db.GenerationGetByIDParams{ID: id, WorkspaceID: workspaceID})
	if isNoRows(err) {
		return records.Generation{}, errNotFound
	}
	if err != nil {
		return records.Generation{}, fmt.Errorf("generation by id: %w", err)
	}
	return generationOf(r)
}

// GenerationFilter selects generations of one workspace; zero fields
// match everything.
type GenerationFilter struct {
	WorkspaceID string
	MemberID    string // only the generations of this member's keys
	Model       string // requested
	Provider    string // that served it
	KeyID       string
	Status      int
	From, To    time.Time // created in [From, To)
	// After is the cursor: the (CreatedAt, ID) of the last row of the
	// previous page.
	AfterCreated time.Time
	AfterID      string
	Limit        int
}

// Far ends of time for open filters (PostgreSQL takes both).
var (
	beginning = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	ending    = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
)

// Generations lists a page of generations, newest first.
func (s *Store) Generations(ctx context.Context, f GenerationFilter) ([]records.Generation, error) {
	p := db.GenerationListParams{WorkspaceID: f.WorkspaceID, MemberID: f.MemberID, Model: f.Model, Provider: f.Provider,
		KeyID: f.KeyID, Status: int32(f.Status), FromAt: beginning, ToAt: ending, CursorAt: ending, PageSize: int32(f.Limit)}
	if !f.From.IsZero() {
		p.FromAt = f.From
	}
	if !f.To.IsZero() {
		p.ToAt = f.To
	}
	if !f.AfterCreated.IsZero() {
		p.CursorAt, p.CursorID = f.AfterCreated, f.AfterID
	}
	rows, err := s.q.GenerationList(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list generations: %w", err)
	}
	out := make([]records.Generation, 0, len(rows))
	for _, r := range rows {
		g, err := generationOf(r)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

func generationOf(r db.Generation) (records.Generation, error) {
	g := records.Generation{
		ID: r.ID, WorkspaceID: r.WorkspaceID, KeyID: r.KeyID, MemberID: r.MemberID,
		RequestedModel: r.RequestedModel, Model: val(r.Model), Provider: val(r.Provider),
		UpstreamID: val(r.UpstreamID), User: val(r.EndUser), SessionID: val(r.SessionID),
		App: attribution.App{ID: val(r.App), Title: val(r.AppTitle), Referer: val(r.HttpReferer), Categories: r.AppCategories,
			ClientName: val(r.ClientName), ClientVersion: val(r.ClientVersion)},
		Streamed: r.Streamed, Cancelled: r.Cancelled, Status: int(r.Status), ErrorType: val(r.ErrorType),
		FinishReason: val(r.FinishReason), NativeFinishReason: val(r.NativeFinishReason),
		PromptTokens: int(r.PromptTokens), CompletionTokens: int(r.CompletionTokens),
		ReasoningTokens: int(r.ReasoningTokens), CachedTokens: int(r.CachedTokens), CacheWriteTokens: int(r.CacheWriteTokens),
		Cost: r.CostUsd, BYOK: r.IsByok, Latency: time.Duration(r.LatencyMs) * time.Millisecond,
		CreatedAt: r.CreatedAt, UsageEstimated: r.UsageEstimated, Anomaly: val(r.Anomaly), ZDR: r.Zdr,
	}
	if len(r.Metadata) > 0 {
		_ = json.Unmarshal(r.Metadata, &g.Metadata) // written by metadataJSON: always an object of strings
	}
	if r.TtftMs != nil {
		g.TTFT = time.Duration(*r.TtftMs) * time.Millisecond
	}
	if err := json.Unmarshal(r.Attempts, &g.Attempts); err != nil {
		return records.Generation{}, fmt.Errorf("decode attempts of %s: %w", r.ID, err)
	}
	if len(r.Routing) > 0 {
		g.Routing = json.RawMessage(r.Routing)
	}
	return g, nil
}

// KeyUsage is a key's spend, lifetime and per current UTC period.
type KeyUsage struct {
	Total, Daily, Weekly, Monthly            decimal.Decimal
	BYOK, BYOKDaily, BYOKWeekly, BYOKMonthly decimal.Decimal
}

// KeyUsage reads a key's spend rollups: lifetime and the current UTC day,
// week (from Monday) and month. They are maintained as records are written,
// so this reads at most four rows whatever the key's history. pending are
// ids of records the caller holds unwritten; written says which of them the
// same snapshot already counts.
func (s *Store) KeyUsage(ctx context.Context, keyID string, now time.Time, pending []string) (u KeyUsage, written map[string]bool, err error) {
	day, week, month := PeriodStarts(now)
	if pending == nil {
		pending = []string{}
	}
	rows, err := s.q.KeyUsageGet(ctx, db.KeyUsageGetParams{KeyID: keyID, DayStart: day, WeekStart: week, MonthStart: month, Pending: pending})
	if err != nil {
		return KeyUsage{}, nil, fmt.Errorf("key usage: %w", err)
	}
	for _, r := range rows {
		switch r.Period {
		case "lifetime":
			u.Total, u.BYOK = r.Usage, r.ByokUsage
		case "daily":
			u.Daily, u.BYOKDaily = r.Usage, r.ByokUsage
		case "weekly":
			u.Weekly, u.BYOKWeekly = r.Usage, r.ByokUsage
		case "monthly":
			u.Monthly, u.BYOKMonthly = r.Usage, r.ByokUsage
		case "written":
			if written == nil {
				written = map[string]bool{}
			}
			written[r.WrittenID] = true
		}
	}
	return u, written, nil
}

// Heartbeat announces this replica as alive (and registers it the first
// time).
func (s *Store) Heartbeat(ctx context.Context, replica string) error {
	if err := s.q.ReplicaHeartbeat(ctx, replica); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// Retire removes a replica that stopped cleanly.
func (s *Store) Retire(ctx context.Context, replica string) error {
	if err := s.q.ReplicaDelete(ctx, replica); err != nil {
		return fmt.Errorf("retire replica: %w", err)
	}
	return nil
}

// InterruptDead turns the open streams of replicas silent since deadBefore
// into interrupted records, and forgets replicas silent for a day.
func (s *Store) InterruptDead(ctx context.Context, deadBefore time.Time) (int64, error) {
	n, err := s.q.GenerationStartsInterrupt(ctx, deadBefore)
	if err != nil {
		return 0, fmt.Errorf("interrupt streams of dead replicas: %w", err)
	}
	if err := s.q.ReplicasForget(ctx, deadBefore.Add(-24*time.Hour)); err != nil {
		return n, fmt.Errorf("forget old replicas: %w", err)
	}
	return n, nil
}

// PeriodStarts returns the starts of the UTC day, week (Monday) and month
// containing now.
func PeriodStarts(now time.Time) (day, week, month time.Time) {
	now = now.UTC()
	day = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	week = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	month = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return day, week, month
}

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func val(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// metadataJSON is a record's metadata as stored; nil when it has none.
func metadataJSON(md map[string]string) []byte {
	if len(md) == 0 {
		return nil
	}
	b, _ := json.Marshal(md) // a map of strings always marshals
	return b
}

// DeleteGenerationsBefore deletes up to batch generation records created
// before t (their aggregates and usage rollups stay) and returns how many.
func (s *Store) DeleteGenerationsBefore(ctx context.Context, t time.Time, batch int) (int64, error) {
	n, err := s.q.GenerationDeleteOlder(ctx, db.GenerationDeleteOlderParams{
		BeforeID: ids.Floor(ids.Generation, t), Before: t, Batch: int32(batch)})
	if err != nil {
		return 0, fmt.Errorf("delete old generations: %w", err)
	}
	return n, nil
}
