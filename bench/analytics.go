package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/analytics"
	"github.com/perpetuo/perpetuo/internal/attribution"
	"github.com/perpetuo/perpetuo/internal/ids"
	"github.com/perpetuo/perpetuo/internal/keys"
	"github.com/perpetuo/perpetuo/internal/records"
	"github.com/perpetuo/perpetuo/internal/store"
)

// measureAnalytics writes n generation records spread over the last 30
// days of one workspace (10 apps, 20 keys and members, 5 models, 2
// providers, 3 guardrails) through the store's batch writer, which keeps the
// aggregates, then times the analytics reports read from them. It prints
// what it saw.
//
// With spread, every record draws its app, model and provider at random
// (the worst case: nearly one aggregate row per record); without, each key
// keeps to one app and two models, as real clients do.
func measureAnalytics(ctx context.Context, n int, spread bool, w io.Writer) error {
	db, stop, err := openMigrated(ctx)
	if err != nil {
		return err
	}
	defer stop()
	st := store.New(db.pool)
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	const batch = 5000
	models := []string{"openai/gpt-4o", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4", "meta-llama/llama-3.3-70b-instruct", "mock/echo"}
	fmt.Fprintf(os.Stderr, "bench: writing %d generation records\n", n)
	start := time.Now()
	pgBefore := postgresCPU()
	for done := 0; done < n; done += batch {
		gs := make([]records.Generation, 0, min(batch, n-done))
		for i := range cap(gs) {
			// In time order, as a writer sees them: a batch holds the
			// records of the last moments, not of the whole month.
			at := now.Add(-30 * 24 * time.Hour).Add(time.Duration(done+i) * (30 * 24 * time.Hour / time.Duration(n)))
			k := (done + i) % 20
			app, model, provider := k%10, (k+rng.IntN(2))%len(models), k%2
			if spread {
				app, model, provider = rng.IntN(10), rng.IntN(len(models)), rng.IntN(2)
			}
			g := records.Generation{ID: ids.New(ids.Generation, at), WorkspaceID: "ws_analytics", KeyID: fmt.Sprintf("key_%02d", k),
				MemberID: fmt.Sprintf("mem_%02d", k), RequestedModel: models[model], Provider: []string{"openai", "groq"}[provider],
				App: attribution.App{ID: fmt.Sprintf("app%d.example", app)}, Status: 200, PromptTokens: 20 + rng.IntN(2000),
				CompletionTokens: rng.IntN(800), Cost: decimal.New(int64(rng.IntN(100000)), -9), Streamed: rng.IntN(2) == 0,
				Latency: time.Duration(50+rng.IntN(5000)) * time.Millisecond, CreatedAt: at, Guardrails: []string{fmt.Sprintf("gr_%d", k%3)}}
			g.Model = g.RequestedModel
			if g.Streamed {
				g.TTFT = time.Duration(20+rng.IntN(800)) * time.Millisecond
			}
			if rng.IntN(50) == 0 {
				g.Status, g.ErrorType = 502, "provider_unavailable"
			}
			gs = append(gs, g)
		}
		if err := st.InsertGenerations(ctx, gs); err != nil {
			return err
		}
	}
	wrote := time.Since(start)
	pgAfter := postgresCPU()
	var rows int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM usage_hourly`).Scan(&rows); err != nil {
		return err
	}
	svc := analytics.NewService(st, nil)
	owner := keys.Key{WorkspaceID: "ws_analytics", Role: "owner"}
	type query struct {
		name string
		run  func() error
	}
	report := func(q analytics.Query) func() error {
		return func() error { _, err := svc.Report(ctx, owner, q); return err }
	}
	queries := []query{
		{"apps, 7 days, hourly series", report(analytics.Query{Dimension: analytics.ByApp, Granularity: "hour"})},
		{"models, 30 days, daily series", report(analytics.Query{Dimension: analytics.ByModel, From: now.Add(-30 * 24 * time.Hour), Granularity: "day"})},
		{"keys, 30 days", report(analytics.Query{Dimension: analytics.ByKey, From: now.Add(-30 * 24 * time.Hour)})},
		{"apps, 30 days, one key", report(analytics.Query{Dimension: analytics.ByApp, From: now.Add(-30 * 24 * time.Hour), Key: "key_07"})},
		{"guardrails, 30 days", report(analytics.Query{Dimension: analytics.ByGuardrail, From: now.Add(-30 * 24 * time.Hour)})},
		{"activity, 30 days", func() error { _, err := svc.Activity(ctx, owner, time.Time{}); return err }},
	}
	shape := "each key on one app and two models"
	if spread {
		shape = "app, model and provider drawn at random per record (worst case)"
	}
	fmt.Fprintf(w, "\nAnalytics: %d generation records over 30 days, one workspace, %s\n", n, shape)
	fmt.Fprintln(w, "====================================================================")
	fmt.Fprintf(w, "written in %s through the batch writer (%d per batch): %.1f µs per record wall, PostgreSQL CPU %.1f µs per record;\n",
		wrote.Round(time.Millisecond), batch, float64(wrote.Microseconds())/float64(n), float64((pgAfter-pgBefore).Microseconds())/float64(n))
	fmt.Fprintf(w, "the aggregates hold %d hourly rows\n", rows)
	fmt.Fprintf(w, "%-32s %8s %10s %10s\n", "report", "calls", "p50", "p99")
	for _, q := range queries {
		var took []time.Duration
		for range 10 {
			t := time.Now()
			if err := q.run(); err != nil {
				return fmt.Errorf("%s: %w", q.name, err)
			}
			took = append(took, time.Since(t))
		}
		slices.Sort(took)
		fmt.Fprintf(w, "%-32s %8d %10s %10s\n", q.name, len(took), took[len(took)/2].Round(10*time.Microsecond), took[len(took)*99/100].Round(10*time.Microsecond))
	}
	return nil
}
