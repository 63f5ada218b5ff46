package catalog

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// APIFamilies are the wire formats Perpetuo knows how to speak upstream.
var APIFamilies = map[string]bool{"openai": true, "anthropic": true, "gemini": true, "azure": true}

func (p *Provider) validate() error {
	if !slugPattern.MatchString(p.Slug) {
		// Lower case, digits and '-' only: PERPETUO_PROVIDER_<SLUG>_* maps back to it.
		return fmt.Errorf("provider %q: slug must be lower-case letters, digits and '-'", p.Slug)
	}
	if p.Name == "" {
		return fmt.Errorf("provider %q: name is required", p.Slug)
	}
	if !APIFamilies[p.API] {
		return fmt.Errorf("provider %q: api %q is not one of openai, azure, anthropic, gemini", p.Slug, p.API)
	}
	if err := p.Compat.validate(); err != nil {
		return fmt.Errorf("provider %q: compat.%w", p.Slug, err)
	}
	if p.Compat != (Compat{}) && p.API != "openai" && p.API != "azure" {
		return fmt.Errorf("provider %q: compat is for the openai and azure families, not %s", p.Slug, p.API)
	}
	if p.BaseURL != "" {
		u, err := url.Parse(p.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("provider %q: base_url %q must be an absolute http(s) URL", p.Slug, p.BaseURL)
		}
	}
	return nil
}

var headerName = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

func (c Compat) validate() error {
	switch {
	case c.AuthHeader != "" && !headerName.MatchString(c.AuthHeader):
		return fmt.Errorf("auth_header %q must be a header name (letters, digits and '-')", c.AuthHeader)
	case c.MaxTokensField != "" && c.MaxTokensField != "max_tokens" && c.MaxTokensField != "max_completion_tokens":
		return fmt.Errorf("max_tokens_field %q is not one of max_tokens, max_completion_tokens", c.MaxTokensField)
	case c.StreamUsage != "" && c.StreamUsage != StreamUsageAsked && c.StreamUsage != StreamUsageAlways && c.StreamUsage != StreamUsageNone:
		return fmt.Errorf("stream_usage %q is not one of include_usage, always, none", c.StreamUsage)
	case c.ReasoningField != "" && c.ReasoningField != "reasoning" && c.ReasoningField != ReasoningContent:
		return fmt.Errorf("reasoning_field %q is not one of reasoning, reasoning_content", c.ReasoningField)
	}
	return nil
}

func (c *Catalog) validateModel(m *Model) error {
	author, slug, ok := strings.Cut(m.ID, "/")
	if !ok || author == "" || slug == "" {
		return fmt.Errorf("model %q: id must be author/slug", m.ID)
	}
	if m.Name == "" {
		return fmt.Errorf("model %q: name is required", m.ID)
	}
	if len(m.Endpoints) == 0 {
		return fmt.Errorf("model %q: needs at least one endpoint", m.ID)
	}
	seen := map[string]bool{}
	for _, e := range m.Endpoints {
		if _, ok := c.providers[e.Provider]; !ok {
			return fmt.Errorf("model %q: endpoint provider %q is not in providers", m.ID, e.Provider)
		}
		if seen[e.Provider] {
			return fmt.Errorf("model %q: provider %q has two endpoints", m.ID, e.Provider)
		}
		seen[e.Provider] = true
		if e.UpstreamModel == "" {
			return fmt.Errorf("model %q, provider %q: upstream_model is required", m.ID, e.Provider)
		}
		if e.Pricing.negative() {
			return fmt.Errorf("model %q, provider %q: prices must not be negative", m.ID, e.Provider)
		}
		if e.ContextLength <= 0 {
			return fmt.Errorf("model %q, provider %q: context_length must be positive", m.ID, e.Provider)
		}
		if e.UpdatedAt != "" {
			if _, err := time.Parse(time.DateOnly, e.UpdatedAt); err != nil {
				return fmt.Errorf("model %q, provider %q: updated_at %q must be a date YYYY-MM-DD", m.ID, e.Provider, e.UpdatedAt)
			}
		}
		if e.LatencyMs < 0 {
			return fmt.Errorf("model %q, provider %q: latency_ms must not be negative", m.ID, e.Provider)
		}
		if e.Throughput < 0 {
			return fmt.Errorf("model %q, provider %q: throughput must not be negative", m.ID, e.Provider)
		}
	}
	return nil
}
