package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/gen/db"
	"github.com/perpetuo/perpetuo/internal/records"
)

// InsertGenerations implements records.Store with one pipelined batch of
// idempotent inserts, so retrying a batch never fails on rows it wrote.
func (s *Store) InsertGenerations(ctx context.Context, gs []records.Generation) error {
	rows := make([]db.GenerationInsertParams, len(gs))
	for i, g := range gs {
		attempts, err := json.Marshal(g.Attempts)
		if err != nil {
			return fmt.Errorf("encode attempts of %s: %w", g.ID, err)
		}
		rows[i] = db.GenerationInsertParams{
			ID: g.ID, WorkspaceID: g.WorkspaceID, KeyID: g.KeyID, MemberID: g.MemberID,
			RequestedModel: g.RequestedModel, Model: ptr(g.Model), Provider: ptr(g.Provider),
			UpstreamID: ptr(g.UpstreamID), App: ptr(g.App), EndUser: ptr(g.User), SessionID: ptr(g.SessionID),
			Streamed: g.Streamed, Cancelled: g.Cancelled, Status: int32(g.Status),
			ErrorType: ptr(g.ErrorType), FinishReason: ptr(g.FinishReason), NativeFinishReason: ptr(g.NativeFinishReason),
			PromptTokens: int32(g.PromptTokens), CompletionTokens: int32(g.CompletionTokens),
			ReasoningTokens: int32(g.ReasoningTokens), CachedTokens: int32(g.CachedTokens),
			CostUsd: g.Cost, IsByok: g.BYOK, LatencyMs: int32(g.Latency.Milliseconds()),
			TtftMs: ms(g.TTFT), Attempts: attempts, CreatedAt: g.CreatedAt,
			UsageEstimated: g.UsageEstimated, Anomaly: ptr(g.Anomaly),
		}
	}
	var first error
	br := s.q.GenerationInsert(ctx, rows)
	br.Exec(func(i int, err error) {
		if err != nil && first == nil {
			first = fmt.Errorf("insert generation %s: %w", rows[i].ID, rejected(err))
		}
	})
	if err := br.Close(); err != nil && first == nil {
		first = fmt.Errorf("insert generations: %w", rejected(err))
	}
	return first
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
		return records.Generation{}, records.ErrNotFound
	}
	if err != nil {
		return records.Generation{}, fmt.Errorf("generation by id: %w", err)
	}
	g := records.Generation{
		ID: r.ID, WorkspaceID: r.WorkspaceID, KeyID: r.KeyID, MemberID: r.MemberID,
		RequestedModel: r.RequestedModel, Model: val(r.Model), Provider: val(r.Provider),
		UpstreamID: val(r.UpstreamID), App: val(r.App), User: val(r.EndUser), SessionID: val(r.SessionID),
		Streamed: r.Streamed, Cancelled: r.Cancelled, Status: int(r.Status), ErrorType: val(r.ErrorType),
		FinishReason: val(r.FinishReason), NativeFinishReason: val(r.NativeFinishReason),
		PromptTokens: int(r.PromptTokens), CompletionTokens: int(r.CompletionTokens),
		ReasoningTokens: int(r.ReasoningTokens), CachedTokens: int(r.CachedTokens),
		Cost: r.CostUsd, BYOK: r.IsByok, Latency: time.Duration(r.LatencyMs) * time.Millisecond,
		CreatedAt: r.CreatedAt, UsageEstimated: r.UsageEstimated, Anomaly: val(r.Anomaly),
	}
	if r.TtftMs != nil {
		g.TTFT = time.Duration(*r.TtftMs) * time.Millisecond
	}
	if err := json.Unmarshal(r.Attempts, &g.Attempts); err != nil {
		return records.Generation{}, fmt.Errorf("decode attempts of %s: %w", id, err)
	}
	return g, nil
}

// KeyUsage is a key's spend, lifetime and per current UTC period.
type KeyUsage struct {
	Total, Daily, Weekly, Monthly, BYOK decimal.Decimal
}

// KeyUsage reads a key's spend rollups: lifetime and the current UTC day,
// week (from Monday) and month. They are maintained as records are written,
// so this reads at most four rows whatever the key's history.
func (s *Store) KeyUsage(ctx context.Context, keyID string, now time.Time) (KeyUsage, error) {
	day, week, month := PeriodStarts(now)
	rows, err := s.q.KeyUsageGet(ctx, db.KeyUsageGetParams{KeyID: keyID, DayStart: day, WeekStart: week, MonthStart: month})
	if err != nil {
		return KeyUsage{}, fmt.Errorf("key usage: %w", err)
	}
	var u KeyUsage
	for _, r := range rows {
		switch r.Period {
		case "lifetime":
			u.Total, u.BYOK = r.Usage, r.ByokUsage
		case "daily":
			u.Daily = r.Usage
		case "weekly":
			u.Weekly = r.Usage
		case "monthly":
			u.Monthly = r.Usage
		}
	}
	return u, nil
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

func ms(d time.Duration) *int32 {
	if d <= 0 {
		return nil
	}
	v := int32(d.Milliseconds())
	return &v
}
