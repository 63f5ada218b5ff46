// Package guardrails is the guardrail aggregate and its management rules: a
// guardrail is a named policy (a budget per period, model and provider allow
// and ignore lists, zero data retention) assigned to members and keys, or
// made the workspace's default for members without one. What a guardrail
// means for a request is internal/policy's business; this package decides
// what may be stored and who may change it.
package guardrails

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/catalog"
	"github.com/perpetuo/perpetuo/internal/keys"
)

// Guardrail is one named policy of a workspace.
type Guardrail struct {
	ID          string
	WorkspaceID string
	Input
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Input is what a client sets on a guardrail (PUT replaces all of it).
type Input struct {
	Name        string
	Description string
	Limit       decimal.NullDecimal // no budget when not Valid
	Reset       string              // "", "daily", "weekly", "monthly"
	// AllowedModels are model ids or patterns ending in "*"; empty allows
	// every model. IgnoredModels are never served.
	AllowedModels, IgnoredModels []string
	// AllowedProviders are provider slugs; empty allows every provider.
	AllowedProviders, IgnoredProviders []string
	EnforceZDR                         bool
	IncludeBYOK                        bool // BYOK spend counts toward the budget
}

// Assignment says a guardrail governs a member or a key directly.
type Assignment struct {
	Kind        string // "member" or "key"
	ID          string
	GuardrailID string
}

// ErrNotFound is returned by a Store that has no such row.
var ErrNotFound = errors.New("not found")

// Store persists guardrails and their assignments. Every change publishes
// the invalidation that makes every replica's policy cache drop it.
type Store interface {
	Guardrails(ctx context.Context, workspaceID string) ([]Guardrail, error)
	Guardrail(ctx context.Context, workspaceID, id string) (Guardrail, error)
	CreateGuardrail(ctx context.Context, workspaceID string, in Input, now time.Time) (Guardrail, error)
	UpdateGuardrail(ctx context.Context, workspaceID, id string, in Input) (Guardrail, error)
	// DeleteGuardrail deletes it after unassigning it everywhere, in one
	// transaction.
	DeleteGuardrail(ctx context.Context, workspaceID, id string) error
	Assignments(ctx context.Context, workspaceID string) ([]Assignment, error)
	DefaultGuardrail(ctx context.Context, workspaceID string) (string, error)
	// AssignMember and AssignKey set (guardrailID != "") or clear the one
	// guardrail of a member or a key; ErrNotFound when it does not exist.
	AssignMember(ctx context.Context, workspaceID, memberID, guardrailID string) error
	AssignKey(ctx context.Context, workspaceID, keyID, guardrailID string) error
	// MemberRole and KeyMemberRole are the role of a member, and of a
	// key's member (owners are managed by owners only).
	MemberRole(ctx context.Context, workspaceID, memberID string) (string, error)
	KeyMemberRole(ctx context.Context, workspaceID, keyID string) (string, error)
}

// Service applies the management rules over a Store.
type Service struct {
	store   Store
	catalog *catalog.Catalog
	now     func() time.Time
}

// NewService returns a Service; now may be nil.
func NewService(st Store, cat *catalog.Catalog, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, catalog: cat, now: now}
}

// Governing is a guardrail with who it governs.
type Governing struct {
	Guardrail
	Default   bool
	MemberIDs []string
	KeyIDs    []string
}

// List returns the guardrails the caller may read: every one for roles
// that read them all, else those governing the caller's key.
func (s *Service) List(ctx context.Context, caller keys.Key) ([]Governing, error) {
	gs, err := s.store.Guardrails(ctx, caller.WorkspaceID)
	if err != nil {
		return nil, err
	}
	out, err := s.describe(ctx, caller.WorkspaceID, gs)
	if err != nil {
		return nil, err
	}
	if access.Can(caller.Role, access.ReadAllGuardrails) {
		return out, nil
	}
	return slices.DeleteFunc(out, func(g Governing) bool { return !governs(g, caller) }), nil
}

// Get returns one guardrail the caller may read; one that does not govern
// a member is, to that member, not found.
func (s *Service) Get(ctx context.Context, caller keys.Key, id string) (Governing, error) {
	g, err := s.store.Guardrail(ctx, caller.WorkspaceID, id)
	if err != nil {
		return Governing{}, notFound(err, id)
	}
	out, err := s.describe(ctx, caller.WorkspaceID, []Guardrail{g})
	if err != nil {
		return Governing{}, err
	}
	if !access.Can(caller.Role, access.ReadAllGuardrails) && !governs(out[0], caller) {
		return Governing{}, notFound(ErrNotFound, id)
	}
	return out[0], nil
}

// governs reports whether g governs the caller's key (assigned to it, to
// its member, or the default of a member without one).
func governs(g Governing, caller keys.Key) bool {
	if caller.GuardrailID == g.ID || slices.Contains(g.KeyIDs, caller.ID) || slices.Contains(g.MemberIDs, caller.MemberID) {
		return true
	}
	return g.Default && caller.MemberGuardrailID == ""
}

func (s *Service) describe(ctx context.Context, workspaceID string, gs []Guardrail) ([]Governing, error) {
	as, err := s.store.Assignments(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	def, err := s.store.DefaultGuardrail(ctx, workspaceID)
	if err != nil {
		return nil, err
	}
	out := make([]Governing, len(gs))
	for i, g := range gs {
		out[i] = Governing{Guardrail: g, Default: g.ID == def, MemberIDs: []string{}, KeyIDs: []string{}}
		for _, a := range as {
			if a.GuardrailID != g.ID {
				continue
			}
			if a.Kind == "member" {
				out[i].MemberIDs = append(out[i].MemberIDs, a.ID)
			} else {
				out[i].KeyIDs = append(out[i].KeyIDs, a.ID)
			}
		}
	}
	return out, nil
}

// Create validates in and stores a new guardrail (admins and owners).
func (s *Service) Create(ctx context.Context, caller keys.Key, in Input) (Governing, error) {
	if err := access.Require(caller.Role, access.ManageGuardrails); err != nil {
		return Governing{}, err
	}
	in, err := s.Check(in)
	if err != nil {
		return Governing{}, err
	}
	g, err := s.store.CreateGuardrail(ctx, caller.WorkspaceID, in, s.now())
	if err != nil {
		return Governing{}, err
	}
	return Governing{Guardrail: g, MemberIDs: []string{}, KeyIDs: []string{}}, nil
}

// Update replaces a guardrail's fields (admins and owners).
func (s *Service) Update(ctx context.Context, caller keys.Key, id string, in Input) (Governing, error) {
	if err := access.Require(caller.Role, access.ManageGuardrails); err != nil {
		return Governing{}, err
	}
	in, err := s.Check(in)
	if err != nil {
		return Governing{}, err
	}
	g, err := s.store.UpdateGuardrail(ctx, caller.WorkspaceID, id, in)
	if err != nil {
		return Governing{}, notFound(err, id)
	}
	out, err := s.describe(ctx, caller.WorkspaceID, []Guardrail{g})
	if err != nil {
		return Governing{}, err
	}
	return out[0], nil
}

// Delete deletes a guardrail (admins and owners). One that governs anyone
// is refused with 409 unless force, which unassigns it first.
func (s *Service) Delete(ctx context.Context, caller keys.Key, id string, force bool) error {
	if err := access.Require(caller.Role, access.ManageGuardrails); err != nil {
		return err
	}
	g, err := s.Get(ctx, caller, id)
	if err != nil {
		return err
	}
	if n := len(g.MemberIDs) + len(g.KeyIDs); !force && (n > 0 || g.Default) {
		e := apierr.New(http.StatusConflict, apierr.Conflict,
			"Guardrail %s is assigned to %d member(s) and %d key(s)%s; delete it with ?force=true to unassign it everywhere first.",
			id, len(g.MemberIDs), len(g.KeyIDs), map[bool]string{true: " and is the workspace default", false: ""}[g.Default]).
			With("members", len(g.MemberIDs)).With("keys", len(g.KeyIDs)).With("is_default", g.Default)
		return e
	}
	return notFound(s.store.DeleteGuardrail(ctx, caller.WorkspaceID, id), id)
}

// AssignMember makes guardrailID the member's guardrail ("" clears it).
// Admins and owners assign; an owner's only by owners.
func (s *Service) AssignMember(ctx context.Context, caller keys.Key, memberID, guardrailID string) error {
	if err := access.Require(caller.Role, access.ManageGuardrails); err != nil {
		return err
	}
	role, err := s.store.MemberRole(ctx, caller.WorkspaceID, memberID)
	if err != nil {
		return notFoundWhat(err, "Member", memberID)
	}
	if role == access.Owner {
		if err := access.Require(caller.Role, access.ManageOwners); err != nil {
			return err
		}
	}
	if err := s.exists(ctx, caller.WorkspaceID, guardrailID); err != nil {
		return err
	}
	return notFoundWhat(s.store.AssignMember(ctx, caller.WorkspaceID, memberID, guardrailID), "Member", memberID)
}

// AssignKey makes guardrailID the key's own guardrail ("" clears it).
func (s *Service) AssignKey(ctx context.Context, caller keys.Key, keyID, guardrailID string) error {
	if err := access.Require(caller.Role, access.ManageGuardrails); err != nil {
		return err
	}
	role, err := s.store.KeyMemberRole(ctx, caller.WorkspaceID, keyID)
	if err != nil {
		return notFoundWhat(err, "Key", keyID)
	}
	if role == access.Owner {
		if err := access.Require(caller.Role, access.ManageOwners); err != nil {
			return err
		}
	}
	if err := s.exists(ctx, caller.WorkspaceID, guardrailID); err != nil {
		return err
	}
	return notFoundWhat(s.store.AssignKey(ctx, caller.WorkspaceID, keyID, guardrailID), "Key", keyID)
}

// The kinds of assignee Assign and Unassign take.
const (
	Keys    = "keys"
	Members = "members"
)

// Assign makes guardrailID the own guardrail of every key (kind Keys) or
// member (kind Members) of ids, with AssignKey's and AssignMember's
// rules. Every one is checked before any is changed, so an unknown id or a
// forbidden owner changes nothing. It returns how many were assigned.
func (s *Service) Assign(ctx context.Context, caller keys.Key, kind, guardrailID string, ids []string) (int, error) {
	if err := s.checkBulk(ctx, caller, kind, guardrailID, ids); err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := s.assign(ctx, caller, kind, id, guardrailID); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// Unassign clears guardrailID from those of ids it governs directly; the
// others are left as they are. It returns how many were unassigned.
func (s *Service) Unassign(ctx context.Context, caller keys.Key, kind, guardrailID string, ids []string) (int, error) {
	if err := s.checkBulk(ctx, caller, kind, guardrailID, ids); err != nil {
		return 0, err
	}
	g, err := s.Get(ctx, caller, guardrailID)
	if err != nil {
		return 0, err
	}
	governed := g.KeyIDs
	if kind == Members {
		governed = g.MemberIDs
	}
	n := 0
	for _, id := range ids {
		if !slices.Contains(governed, id) {
			continue
		}
		if err := s.assign(ctx, caller, kind, id, ""); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// checkBulk checks the caller may change the guardrail of every one of ids.
func (s *Service) checkBulk(ctx context.Context, caller keys.Key, kind, guardrailID string, ids []string) error {
	if err := access.Require(caller.Role, access.ManageGuardrails); err != nil {
		return err
	}
	if _, err := s.store.Guardrail(ctx, caller.WorkspaceID, guardrailID); err != nil {
		return notFound(err, guardrailID)
	}
	for _, id := range ids {
		var role string
		var err error
		if kind == Members {
			role, err = s.store.MemberRole(ctx, caller.WorkspaceID, id)
			err = notFoundWhat(err, "Member", id)
		} else {
			role, err = s.store.KeyMemberRole(ctx, caller.WorkspaceID, id)
			err = notFoundWhat(err, "Key", id)
		}
		if err != nil {
			return err
		}
		if role == access.Owner {
			if err := access.Require(caller.Role, access.ManageOwners); err != nil {
				return err
			}
		}
	}
	return nil
}

// assign writes one assignment checkBulk has allowed.
func (s *Service) assign(ctx context.Context, caller keys.Key, kind, id, guardrailID string) error {
	if kind == Members {
		return notFoundWhat(s.store.AssignMember(ctx, caller.WorkspaceID, id, guardrailID), "Member", id)
	}
	return notFoundWhat(s.store.AssignKey(ctx, caller.WorkspaceID, id, guardrailID), "Key", id)
}

// CheckAssignable checks the caller may make guardrail id the workspace's
// default (field names it in errors): admins and owners, and a guardrail
// of the workspace ("" clears it).
func (s *Service) CheckAssignable(ctx context.Context, caller keys.Key, field, id string) error {
	if err := access.Require(caller.Role, access.ManageGuardrails); err != nil {
		return err
	}
	return s.existsAs(ctx, caller.WorkspaceID, field, id)
}

// exists checks a guardrail to assign is in the workspace ("" always is).
func (s *Service) exists(ctx context.Context, workspaceID, id string) error {
	return s.existsAs(ctx, workspaceID, "/guardrail_id", id)
}

func (s *Service) existsAs(ctx context.Context, workspaceID, field, id string) error {
	if id == "" {
		return nil
	}
	if _, err := s.store.Guardrail(ctx, workspaceID, id); err != nil {
		if errors.Is(err, ErrNotFound) {
			return apierr.New(http.StatusBadRequest, apierr.InvalidRequest,
				"%s names no guardrail of this workspace; list them with GET /v1/workspaces/%s/guardrails.", strings.TrimPrefix(field, "/"), workspaceID).
				With("field", field)
		}
		return err
	}
	return nil
}

// Check normalises in (lists deduplicated, an empty description or reset
// dropped) and refuses what cannot be a guardrail, naming the field:
// unknown models, patterns matching no model, unknown providers, a negative
// limit, a period without a limit.
func (s *Service) Check(in Input) (Input, error) {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" {
		return in, invalid("/name", "name must not be blank.")
	}
	if in.Limit.Valid && in.Limit.Decimal.IsNegative() {
		return in, invalid("/limit_usd", "limit_usd must be 0 or more.")
	}
	switch in.Reset {
	case "", "daily", "weekly", "monthly":
	default:
		return in, invalid("/reset_interval", "reset_interval must be daily, weekly or monthly (or null for a lifetime budget).")
	}
	if in.Reset != "" && !in.Limit.Valid {
		return in, invalid("/reset_interval", "reset_interval is the period of a budget: set limit_usd too, or leave reset_interval out.")
	}
	var err error
	for _, f := range []struct {
		name string
		list *[]string
		ok   func(string) bool
		what string
	}{
		{"allowed_models", &in.AllowedModels, s.knownModel, "a model id of GET /v1/models or a pattern such as 'anthropic/*' matching one"},
		{"ignored_models", &in.IgnoredModels, s.knownModel, "a model id of GET /v1/models or a pattern such as 'anthropic/*' matching one"},
		{"allowed_providers", &in.AllowedProviders, s.knownProvider, "a provider slug of GET /v1/providers"},
		{"ignored_providers", &in.IgnoredProviders, s.knownProvider, "a provider slug of GET /v1/providers"},
	} {
		if *f.list, err = checkList(f.name, *f.list, f.ok, f.what); err != nil {
			return in, err
		}
	}
	return in, nil
}

func checkList(field string, list []string, ok func(string) bool, what string) ([]string, error) {
	out := make([]string, 0, len(list))
	for i, v := range list {
		v = strings.TrimSpace(v)
		if !ok(v) {
			// The value is the client's: named by position, never echoed.
			return nil, invalid(fmt.Sprintf("/%s/%d", field, i), "%s[%d] is not %s.", field, i, what)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (s *Service) knownModel(id string) bool {
	if prefix, ok := strings.CutSuffix(id, "*"); ok {
		for _, m := range s.catalog.Models() {
			if strings.HasPrefix(m.ID, prefix) {
				return true
			}
		}
		return false
	}
	_, ok := s.catalog.Model(id)
	return ok
}

func (s *Service) knownProvider(slug string) bool {
	_, ok := s.catalog.Provider(slug)
	return ok
}

// Matches reports whether model id matches pattern (an id, or a prefix
// ending in "*"). A variant (":nitro", ":floor") is the model's.
func Matches(pattern, id string) bool {
	if base, _, ok := strings.Cut(id, ":"); ok {
		id = base
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(id, prefix)
	}
	return pattern == id
}

func invalid(field, format string, args ...any) *apierr.Error {
	return apierr.New(http.StatusBadRequest, apierr.InvalidRequest, format, args...).With("field", field)
}

func notFound(err error, id string) error { return notFoundWhat(err, "Guardrail", id) }

func notFoundWhat(err error, what, id string) error {
	if errors.Is(err, ErrNotFound) {
		return apierr.New(http.StatusNotFound, apierr.NotFound, "%s %s not found.", what, id)
	}
	return err
}
