package catalog

// Sync imports OpenRouter's public documents (GET /models,
// /models/{author}/{slug}/endpoints and /endpoints/zdr), from an http(s) base
// URL or from a directory holding copies of them, and builds a catalog
// document in Perpetuo's format (docs/catalog.md, "Syncing from OpenRouter").

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/sync/errgroup"
)

// DefaultSyncMaxDocumentBytes bounds each document Sync reads.
const DefaultSyncMaxDocumentBytes = 32 << 20

// SyncOptions configures Sync.
type SyncOptions struct {
	// From is an http(s) base URL (https://openrouter.ai/api/v1) or a
	// directory holding models.json, endpoints/<author>/<slug>.json and
	// zdr.json.
	From string
	// Models, when not empty, limits the import to these model ids.
	Models []string
	// BaseURLs gives providers (by slug) a base URL, overriding the built-in
	// ones.
	BaseURLs map[string]string
	// Client fetches the documents; nil means a client with timeouts, whose
	// whole-request timeout is Timeout (0: 60s).
	Client  *http.Client
	Timeout time.Duration
	// APIKey, when set, is sent as "Authorization: Bearer" to the base URL
	// (OpenRouter only returns latency figures to authenticated callers).
	APIKey string
	// Today dates the endpoints (updated_at); zero means now.
	Today time.Time
	// MaxDocumentBytes bounds each document; 0 means 32 MiB.
	MaxDocumentBytes int64
	// Concurrency is how many endpoints documents are fetched at once; 0
	// means 4.
	Concurrency int
}

// SyncSkip is an OpenRouter model or endpoint that the catalog cannot
// represent, and why. Provider is empty when the whole model is skipped.
type SyncSkip struct {
	Model    string
	Provider string
	Reason   string
}

func (s SyncSkip) String() string {
	if s.Provider == "" {
		return fmt.Sprintf("model %q: %s", s.Model, s.Reason)
	}
	return fmt.Sprintf("model %q, provider %q: %s", s.Model, s.Provider, s.Reason)
}

// SyncResult is the imported catalog and what was left out of it.
type SyncResult struct {
	// JSON is the catalog document, already validated with Parse.
	JSON    []byte
	Catalog *Catalog
	// Models, Endpoints and Providers count what was imported.
	Models, Endpoints, Providers int
	// SkippedEndpoints are endpoints left out; SkippedModels are models left
	// out as a whole (no endpoints document, or no endpoint left).
	SkippedEndpoints []SyncSkip
	SkippedModels    []SyncSkip
	// Notes are imported data worth a look (a provider that is ZDR for only
	// some of its endpoints, a price with more than 10 decimal places, ...).
	Notes []string
}

// OpenRouter document shapes: only the fields Sync reads. Unknown fields are
// ignored, since OpenRouter adds fields over time.
type orModelsDoc struct {
	Data []orModel `json:"data"`
}

type orModel struct {
	ID            string   `json:"id"`
	CanonicalSlug string   `json:"canonical_slug"`
	Name          string   `json:"name"`
	Created       *float64 `json:"created"`
	Description   string   `json:"description"`
	ContextLength *float64 `json:"context_length"`
	Architecture  struct {
		InputModalities  []string `json:"input_modalities"`
		OutputModalities []string `json:"output_modalities"`
		Tokenizer        string   `json:"tokenizer"`
	} `json:"architecture"`
	SupportedParameters []string `json:"supported_parameters"`
}

type orEndpointsDoc struct {
	Data *struct {
		ID        string       `json:"id"`
		Endpoints []orEndpoint `json:"endpoints"`
	} `json:"data"`
}

type orZDRDoc struct {
	Data []orEndpoint `json:"data"`
}

type orEndpoint struct {
	Name                string                     `json:"name"`
	ModelID             string                     `json:"model_id"`
	ProviderName        string                     `json:"provider_name"`
	Tag                 string                     `json:"tag"`
	ContextLength       *float64                   `json:"context_length"`
	Pricing             map[string]json.RawMessage `json:"pricing"`
	Quantization        *string                    `json:"quantization"`
	MaxCompletionTokens *float64                   `json:"max_completion_tokens"`
	SupportedParameters []string                   `json:"supported_parameters"`
	LatencyLast30m      json.RawMessage            `json:"latency_last_30m"`
	ThroughputLast30m   json.RawMessage            `json:"throughput_last_30m"`
}

// syncProviderDefaults are API families and base URLs of providers the
// embedded catalog does not have (its own providers come from it). Providers
// in neither get api "openai" and no base URL.
var syncProviderDefaults = map[string]struct{ API, BaseURL string }{
	"sambanova":     {"openai", "https://api.sambanova.ai/v1"},
	"hyperbolic":    {"openai", "https://api.hyperbolic.xyz/v1"},
	"novita":        {"openai", "https://api.novita.ai/v3/openai"},
	"google-vertex": {"gemini", ""},
}

// errNotFound marks a document that does not exist (HTTP 404, missing file).
var errNotFound = errors.New("not found")

// Sync imports OpenRouter documents into a catalog document. Endpoints and
// models the catalog cannot represent are left out and listed in the result;
// malformed documents, failed fetches and an unknown model in opts.Models
// are errors.
func Sync(ctx context.Context, opts SyncOptions) (*SyncResult, error) {
	src, err := newSyncSource(opts)
	if err != nil {
		return nil, err
	}
	today := opts.Today
	if today.IsZero() {
		today = time.Now()
	}
	known, err := Default()
	if err != nil {
		return nil, err
	}

	b, where, err := src.get(ctx, src.modelsRef())
	if err != nil {
		return nil, fmt.Errorf("models document: %w", err)
	}
	var models orModelsDoc
	if err := json.Unmarshal(b, &models); err != nil {
		return nil, fmt.Errorf("models document %s: %w", where, err)
	}
	if models.Data == nil {
		return nil, fmt.Errorf("models document %s: no \"data\" array", where)
	}

	res := &SyncResult{}
	selected, err := selectModels(models.Data, opts.Models, res)
	if err != nil {
		return nil, err
	}

	// Endpoints documents, fetched a few at a time, kept in model order.
	type fetched struct {
		eps   []orEndpoint
		where string
		skip  string
	}
	docs := make([]fetched, len(selected))
	g, gctx := errgroup.WithContext(ctx)
	conc := opts.Concurrency
	if conc <= 0 {
		conc = 4
	}
	g.SetLimit(conc)
	for i, m := range selected {
		g.Go(func() error {
			ref, err := src.endpointsRef(m.ID)
			if err != nil {
				docs[i].skip = err.Error()
				return nil
			}
			b, where, err := src.get(gctx, ref)
			if errors.Is(err, errNotFound) {
				docs[i].skip = "no endpoints document (" + where + ")"
				return nil
			}
			if err != nil {
				return fmt.Errorf("model %q: endpoints document: %w", m.ID, err)
			}
			var doc orEndpointsDoc
			if err := json.Unmarshal(b, &doc); err != nil {
				return fmt.Errorf("model %q: endpoints document %s: %w", m.ID, where, err)
			}
			if doc.Data == nil {
				return fmt.Errorf("model %q: endpoints document %s: no \"data\" object", m.ID, where)
			}
			docs[i] = fetched{eps: doc.Data.Endpoints, where: where}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	b, where, err = src.get(ctx, src.zdrRef())
	if err != nil {
		return nil, fmt.Errorf("zdr document: %w", err)
	}
	var zdrDoc orZDRDoc
	if err := json.Unmarshal(b, &zdrDoc); err != nil {
		return nil, fmt.Errorf("zdr document %s: %w", where, err)
	}
	if zdrDoc.Data == nil {
		return nil, fmt.Errorf("zdr document %s: no \"data\" array", where)
	}
	zdr := map[string]bool{}
	for _, e := range zdrDoc.Data {
		if e.ModelID != "" {
			zdr[e.ModelID+"\x00"+endpointKey(e)] = true
		}
	}

	// Build models, endpoints and the providers they use.
	type endpointRef struct{ model, endpoint int } // in out.Models
	type provInfo struct {
		name           string
		endpoints, zdr int
		zdrEndpoints   []endpointRef
	}
	provs := map[string]*provInfo{}
	var out file
	date := today.Format(time.DateOnly)
	for i, m := range selected {
		if docs[i].skip != "" {
			res.SkippedModels = append(res.SkippedModels, SyncSkip{Model: m.ID, Reason: docs[i].skip})
			continue
		}
		cm := Model{
			ID:               m.ID,
			Name:             m.Name,
			Description:      m.Description,
			InputModalities:  m.Architecture.InputModalities,
			OutputModalities: m.Architecture.OutputModalities,
			Tokenizer:        m.Architecture.Tokenizer,
		}
		if cm.Name == "" {
			cm.Name = m.ID
		}
		if m.Created != nil {
			cm.Created = int64(*m.Created)
		}
		cm.ContextLength, _ = wholeNumber(m.ContextLength)
		knownModel, _ := known.Model(m.ID)
		seen := map[string]string{} // provider slug -> tag kept
		for _, e := range docs[i].eps {
			slug := providerSlug(e.Tag, e.ProviderName)
			label := slug
			if label == "" {
				label = e.Tag + e.ProviderName
			}
			skip := func(reason string) {
				res.SkippedEndpoints = append(res.SkippedEndpoints, SyncSkip{Model: m.ID, Provider: label, Reason: reason})
			}
			if slug == "" {
				skip("no provider tag or name to make a slug from")
				continue
			}
			if kept, dup := seen[slug]; dup {
				skip(fmt.Sprintf("second endpoint of provider %q (tag %q; tag %q kept): the catalog has one endpoint per provider and model", slug, e.Tag, kept))
				continue
			}
			ce, notes, reason := convertEndpoint(m, cm, e, slug)
			if reason != "" {
				skip(reason)
				continue
			}
			res.Notes = append(res.Notes, notes...)
			seen[slug] = e.Tag
			ce.UpstreamModel = m.ID
			if knownModel != nil {
				for _, ke := range knownModel.Endpoints {
					if ke.Provider == slug {
						ce.UpstreamModel = ke.UpstreamModel
					}
				}
			}
			ce.Source = docs[i].where
			ce.UpdatedAt = date
			cm.Endpoints = append(cm.Endpoints, ce)

			p := provs[slug]
			if p == nil {
				p = &provInfo{name: e.ProviderName}
				provs[slug] = p
			}
			p.endpoints++
			key := endpointKey(e)
			for _, id := range []string{m.ID, m.CanonicalSlug, e.ModelID} {
				if id != "" && zdr[id+"\x00"+key] {
					p.zdr++
					p.zdrEndpoints = append(p.zdrEndpoints, endpointRef{model: len(out.Models), endpoint: len(cm.Endpoints) - 1})
					break
				}
			}
		}
		if len(cm.Endpoints) == 0 {
			res.SkippedModels = append(res.SkippedModels, SyncSkip{Model: m.ID, Reason: "no endpoint could be imported"})
			continue
		}
		out.Models = append(out.Models, cm)
		res.Endpoints += len(cm.Endpoints)
	}

	slugs := make([]string, 0, len(provs))
	for s := range provs {
		slugs = append(slugs, s)
	}
	sort.Strings(slugs)
	for _, slug := range slugs {
		info := provs[slug]
		p := Provider{Slug: slug, Name: info.name, API: "openai", DataPolicy: Unknown}
		if kp, ok := known.Provider(slug); ok {
			p.API, p.BaseURL, p.Compat = kp.API, kp.BaseURL, kp.Compat
			p.DataPolicy = kp.DataPolicy
			if p.Name == "" {
				p.Name = kp.Name
			}
		} else if d, ok := syncProviderDefaults[slug]; ok {
			p.API, p.BaseURL = d.API, d.BaseURL
		}
		if u, ok := opts.BaseURLs[slug]; ok {
			p.BaseURL = u
		}
		if p.Name == "" {
			p.Name = slug
		}
		p.DataPolicy.ZDR = info.zdr > 0 && info.zdr == info.endpoints
		if p.DataPolicy.ZDR {
			p.DataPolicy.Source, p.DataPolicy.UpdatedAt = "openrouter /endpoints/zdr", date
		}
		if info.zdr > 0 && info.zdr < info.endpoints {
			// ZDR for some of its models only: those endpoints say so.
			for _, ref := range info.zdrEndpoints {
				dp := p.DataPolicy
				dp.ZDR, dp.Source, dp.UpdatedAt = true, "openrouter /endpoints/zdr", date
				out.Models[ref.model].Endpoints[ref.endpoint].DataPolicy = &dp
			}
			res.Notes = append(res.Notes, fmt.Sprintf("provider %q: zdr only on the %d of its %d imported endpoints that are in the ZDR list", slug, info.zdr, info.endpoints))
		}
		out.Providers = append(out.Providers, p)
	}
	for slug := range opts.BaseURLs {
		if _, ok := provs[slug]; !ok {
			res.Notes = append(res.Notes, fmt.Sprintf("base URL for provider %q unused: no imported endpoint has that provider", slug))
		}
	}
	sort.Strings(res.Notes)
	if out.Providers == nil {
		out.Providers = []Provider{}
	}
	if out.Models == nil {
		out.Models = []Model{}
	}
	if len(out.Models) == 0 {
		return res, errors.New("no model could be imported")
	}

	res.Models, res.Providers = len(out.Models), len(out.Providers)
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	js = append(js, '\n')
	c, err := Parse(js)
	if err != nil {
		return res, fmt.Errorf("imported catalog does not validate: %w", err)
	}
	res.JSON, res.Catalog = js, c
	return res, nil
}

// selectModels keeps the models opts.Models names (all when empty), dropping
// ids the catalog cannot hold.
func selectModels(all []orModel, only []string, res *SyncResult) ([]orModel, error) {
	want := map[string]bool{}
	for _, id := range only {
		want[id] = true
	}
	var out []orModel
	seen := map[string]bool{}
	for _, m := range all {
		if len(want) > 0 && !want[m.ID] {
			continue
		}
		if seen[m.ID] {
			res.SkippedModels = append(res.SkippedModels, SyncSkip{Model: m.ID, Reason: "listed twice in the models document (first kept)"})
			continue
		}
		seen[m.ID] = true
		if author, slug, ok := strings.Cut(m.ID, "/"); !ok || author == "" || slug == "" {
			res.SkippedModels = append(res.SkippedModels, SyncSkip{Model: m.ID, Reason: "id is not author/slug"})
			continue
		}
		out = append(out, m)
	}
	var missing []string
	for _, id := range only {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("models not in the models document: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// convertEndpoint maps an OpenRouter endpoint to a catalog endpoint (without
// upstream model, source and date), or says why it cannot.
func convertEndpoint(m orModel, cm Model, e orEndpoint, slug string) (Endpoint, []string, string) {
	ce := Endpoint{Provider: slug}
	var notes []string
	for _, f := range []struct {
		name     string
		set      func(decimal.Decimal)
		required bool
	}{
		{"prompt", func(d decimal.Decimal) { ce.Pricing.Prompt = d }, true},
		{"completion", func(d decimal.Decimal) { ce.Pricing.Completion = d }, true},
		{"request", func(d decimal.Decimal) { ce.Pricing.Request = d }, false},
		// The classes priced apart exist only where the provider says.
		{"input_cache_read", func(d decimal.Decimal) { ce.Pricing.InputCacheRead = &d }, false},
		{"input_cache_write", func(d decimal.Decimal) { ce.Pricing.InputCacheWrite = &d }, false},
		{"internal_reasoning", func(d decimal.Decimal) { ce.Pricing.InternalReasoning = &d }, false},
	} {
		raw, ok := e.Pricing[f.name]
		if !ok || string(raw) == "null" {
			if f.required {
				return ce, nil, "pricing." + f.name + " is missing"
			}
			continue
		}
		d, err := parsePrice(raw)
		if err != nil {
			return ce, nil, fmt.Sprintf("pricing.%s %s: %v", f.name, raw, err)
		}
		if d.IsNegative() {
			return ce, nil, fmt.Sprintf("pricing.%s %s is negative (a variable price)", f.name, raw)
		}
		if !d.Equal(d.Truncate(10)) {
			notes = append(notes, fmt.Sprintf("model %q, provider %q: pricing.%s %s has more than 10 decimal places; spend is stored rounded to 10", m.ID, slug, f.name, d))
		}
		f.set(d)
	}
	n, ok := wholeNumber(e.ContextLength)
	if !ok && e.ContextLength != nil && *e.ContextLength != 0 {
		return ce, nil, fmt.Sprintf("context_length %v is not a positive integer", *e.ContextLength)
	}
	if n <= 0 {
		n = cm.ContextLength
	}
	if n <= 0 {
		return ce, nil, "no context_length (neither the endpoint's nor the model's)"
	}
	ce.ContextLength = n
	if mct, ok := wholeNumber(e.MaxCompletionTokens); ok {
		ce.MaxCompletionTokens = mct
	}
	if e.Quantization != nil {
		ce.Quantization = *e.Quantization
	}
	ce.SupportedParameters = e.SupportedParameters
	if ce.SupportedParameters == nil {
		ce.SupportedParameters = m.SupportedParameters
	}
	var err error
	if ce.LatencyMs, err = median(e.LatencyLast30m); err != nil {
		notes = append(notes, fmt.Sprintf("model %q, provider %q: latency_last_30m ignored: %v", m.ID, slug, err))
	}
	if ce.Throughput, err = median(e.ThroughputLast30m); err != nil {
		notes = append(notes, fmt.Sprintf("model %q, provider %q: throughput_last_30m ignored: %v", m.ID, slug, err))
	}
	return ce, notes, ""
}

// parsePrice reads an OpenRouter price, a decimal string (or a JSON number),
// exactly.
func parsePrice(raw json.RawMessage) (decimal.Decimal, error) {
	s := string(bytes.TrimSpace(raw))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return decimal.Decimal{}, err
		}
	}
	d, err := decimal.NewFromString(strings.TrimSpace(s))
	if err != nil {
		return decimal.Decimal{}, errors.New("not a decimal number")
	}
	return d, nil
}

// median reads an OpenRouter percentile object ({"p50": ...}) or a bare
// number as a rounded integer; null or absent is 0 (unknown).
func median(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var v *float64
	if err := json.Unmarshal(raw, &v); err != nil {
		var stats struct {
			P50 *float64 `json:"p50"`
		}
		if err := json.Unmarshal(raw, &stats); err != nil {
			return 0, fmt.Errorf("%s is neither a number nor {\"p50\": number}", raw)
		}
		v = stats.P50
	}
	if v == nil || *v <= 0 || math.IsNaN(*v) || math.IsInf(*v, 0) || *v > math.MaxInt32 {
		return 0, nil
	}
	return max(1, int(math.Round(*v))), nil
}

func wholeNumber(v *float64) (int, bool) {
	if v == nil || *v <= 0 || *v != math.Trunc(*v) || *v > math.MaxInt32 {
		return 0, false
	}
	return int(*v), true
}

// endpointKey identifies an endpoint of a model across OpenRouter documents:
// its tag ("together/fp8"), or its provider name when it has none.
func endpointKey(e orEndpoint) string {
	if e.Tag != "" {
		return "tag:" + strings.ToLower(e.Tag)
	}
	return "name:" + slugify(e.ProviderName)
}

// providerSlug makes a catalog provider slug from an OpenRouter endpoint's
// tag ("together/fp8" -> "together") or, without one, its provider name
// ("Google AI Studio" -> "google-ai-studio"). It is "" when neither has a
// letter or digit.
func providerSlug(tag, providerName string) string {
	base, _, _ := strings.Cut(tag, "/")
	if s := slugify(base); s != "" {
		return s
	}
	return slugify(providerName)
}

// slugify lower-cases s and turns every run of other characters than ASCII
// letters and digits into a single '-'.
func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	return b.String()
}

// syncSource reads the documents from a base URL or a directory.
type syncSource struct {
	base   string // http(s) base URL without trailing '/', or ""
	dir    string
	client *http.Client
	apiKey string
	limit  int64
}

func newSyncSource(opts SyncOptions) (*syncSource, error) {
	s := &syncSource{apiKey: opts.APIKey, limit: opts.MaxDocumentBytes, client: opts.Client}
	if s.limit <= 0 {
		s.limit = DefaultSyncMaxDocumentBytes
	}
	from := strings.TrimSpace(opts.From)
	if from == "" {
		return nil, errors.New("no source: give an http(s) base URL or a directory")
	}
	if strings.HasPrefix(from, "http://") || strings.HasPrefix(from, "https://") {
		u, err := url.Parse(from)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("source %q is not a valid URL", from)
		}
		s.base = strings.TrimRight(from, "/")
		if s.client == nil {
			s.client = defaultSyncClient(opts.Timeout)
		}
		return s, nil
	}
	st, err := os.Stat(from)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("source %s is not a directory (nor an http(s) URL)", from)
	}
	s.dir = from
	return s, nil
}

func defaultSyncClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = min(30*time.Second, timeout)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// A document reference: a path under the base URL, or a file under the
// directory.
type syncRef struct{ urlPath, file string }

func (s *syncSource) modelsRef() syncRef { return syncRef{"models", "models.json"} }
func (s *syncSource) zdrRef() syncRef    { return syncRef{"endpoints/zdr", "zdr.json"} }

func (s *syncSource) endpointsRef(id string) (syncRef, error) {
	author, slug, _ := strings.Cut(id, "/")
	for _, part := range []string{author, slug} {
		if part == "." || part == ".." || strings.ContainsAny(part, "/\\\x00") {
			return syncRef{}, errors.New("id cannot name an endpoints document")
		}
	}
	return syncRef{
		urlPath: "models/" + url.PathEscape(author) + "/" + url.PathEscape(slug) + "/endpoints",
		file:    filepath.Join("endpoints", author, slug+".json"),
	}, nil
}

// get reads a document, at most s.limit bytes, and says where it came from.
func (s *syncSource) get(ctx context.Context, ref syncRef) ([]byte, string, error) {
	if s.base == "" {
		where := filepath.Join(s.dir, ref.file)
		f, err := os.Open(where)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, where, fmt.Errorf("%s: %w", where, errNotFound)
		}
		if err != nil {
			return nil, where, err
		}
		defer f.Close()
		b, err := s.readLimited(f, where)
		return b, where, err
	}
	where := s.base + "/" + ref.urlPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, where, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "perpetuo-catalog-sync")
	if s.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.apiKey)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, where, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, where, fmt.Errorf("GET %s: %w", where, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return nil, where, fmt.Errorf("GET %s: status %d: %s", where, resp.StatusCode, strings.TrimSpace(string(head)))
	}
	b, err := s.readLimited(resp.Body, where)
	return b, where, err
}

func (s *syncSource) readLimited(r io.Reader, where string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, s.limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", where, err)
	}
	if int64(len(b)) > s.limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", where, s.limit)
	}
	return b, nil
}
