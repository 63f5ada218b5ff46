// Package routing turns a request's model choice and provider preferences
// into an ordered plan of upstream endpoints, and remembers why every other
// endpoint was left out so the decision can be explained.
//
// Candidates = catalog endpoints of the requested model(s) ∩ providers the
// workspace holds a credential for ∩ API families Perpetuo has an adapter
// for. decide (the pure core) filters them by the request's preferences and
// policy hooks and orders them by provider.order, health, preferences and
// the strategy or sort; Tracker keeps endpoint health and Sessions the
// endpoint of each session_id. docs/routing.md describes the rules.
package routing

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/perpetuo/perpetuo/internal/catalog"
)

// Credential is what Perpetuo calls a provider with.
type Credential struct {
	Provider string
	APIKey   string
	BaseURL  string // overrides the catalog's base URL when set
	BYOK     bool   // the workspace's own key, as opposed to an operator default
	// DataPolicy, when set, replaces the catalog's: a workspace credential
	// whose base URL sends traffic elsewhere has its own (declared, or
	// failing closed).
	DataPolicy *catalog.DataPolicy
	// Deployments map upstream model ids to the names of the deployments
	// serving them, and APIVersion is the API version to call (Azure
	// OpenAI); a model without a mapping is its own deployment's name.
	Deployments map[string]string
	APIVersion  string
}

// String describes the credential without its API key, so a stray %v or
// %+v never prints a provider secret.
func (c Credential) String() string {
	return fmt.Sprintf("routing.Credential{Provider:%s BaseURL:%s BYOK:%t APIKey:%s}", c.Provider, c.BaseURL, c.BYOK, redacted(c.APIKey))
}

// GoString is String, for %#v.
func (c Credential) GoString() string { return c.String() }

// LogValue logs the credential without its API key.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("provider", c.Provider), slog.String("base_url", c.BaseURL),
		slog.Bool("byok", c.BYOK), slog.String("api_key", redacted(c.APIKey)))
}

func redacted(key string) string {
	if key == "" {
		return "none"
	}
	return "[redacted]"
}

// Set is the credential a workspace uses per provider slug.
type Set map[string]Credential

// Credentials finds the credentials a workspace routes with.
type Credentials interface {
	For(ctx context.Context, workspaceID string) (Set, error)
}

// Prefs are the request's provider preferences (OpenRouter's provider object).
type Prefs struct {
	Order             []string
	Only              []string
	Ignore            []string
	AllowFallbacks    *bool
	ZDR               bool
	DataCollection    string // "", "allow", "deny"
	Quantizations     []string
	MaxPrice          *MaxPrice
	RequireParameters bool
	Sort              *Sort
	// PreferredMinThroughput (tokens/s) and PreferredMaxLatency (seconds)
	// move endpoints that miss them after the others; 0 = unset.
	PreferredMinThroughput float64
	PreferredMaxLatency    float64
}

// Fallbacks reports whether endpoints after the first may be tried.
func (p Prefs) Fallbacks() bool { return p.AllowFallbacks == nil || *p.AllowFallbacks }

// Candidate is one endpoint the gateway may call, in plan order.
type Candidate struct {
	Model      *catalog.Model
	Endpoint   *catalog.Endpoint // in the catalog: never modified
	Provider   *catalog.Provider
	Credential Credential
	// Drop are the request's parameters this endpoint does not support,
	// deleted from its upstream body.
	Drop []string
}

// DataPolicy is what happens to data sent to this candidate: its
// credential's policy when it has one, else the endpoint's or provider's.
func (c Candidate) DataPolicy() catalog.DataPolicy {
	if c.Credential.DataPolicy != nil {
		return *c.Credential.DataPolicy
	}
	return catalog.Policy(c.Provider, c.Endpoint)
}

// BaseURL is where to call this candidate.
func (c Candidate) BaseURL() string {
	if c.Credential.BaseURL != "" {
		return c.Credential.BaseURL
	}
	return c.Provider.BaseURL
}

// Exclusion says why an endpoint was left out.
type Exclusion struct {
	Model    string `json:"model"`
	Provider string `json:"provider"`
	Reason   string `json:"reason"`
}

// Reasons an endpoint is excluded; the filter names of design.md §2.
const (
	ReasonCredentials    = "credentials"
	ReasonAdapter        = "adapter"
	ReasonOnly           = "provider:only"
	ReasonIgnore         = "provider:ignore"
	ReasonZDR            = "data_policy:zdr"
	ReasonDataCollection = "data_policy:training"
)

// Plan is the ordered list of candidates, what was excluded, and the
// decision that explains both.
type Plan struct {
	Candidates []Candidate
	Excluded   []Exclusion
	Decision   Decision
}
