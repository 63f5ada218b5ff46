package keys

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/shopspring/decimal"

	"github.com/perpetuo/perpetuo/internal/access"
	"github.com/perpetuo/perpetuo/internal/apierr"
)

// Store persists keys. MemberRole is the role of the member a key acts
// for: owners' keys are managed by owners only.
type Store interface {
	// APIKeys lists a workspace's keys, or one member's when memberID is
	// set.
	APIKeys(ctx context.Context, workspaceID, memberID string) ([]Key, error)
	APIKey(ctx context.Context, workspaceID, id string) (Key, error)
	// CreateAPIKey stores only the plaintext's hash and label;
	// ErrNotFound when k's member does not exist.
	CreateAPIKey(ctx context.Context, k Key, plaintext string, now time.Time) (Key, error)
	UpdateAPIKey(ctx context.Context, k Key) (Key, error)
	DeleteAPIKey(ctx context.Context, workspaceID, id string) error
	MemberRole(ctx context.Context, workspaceID, memberID string) (string, error)
}

// Change is what a client sets on a key. Nil fields are left as they are;
// the nullable ones have a Set flag, so clearing one (Set with the zero
// value) differs from leaving it out.
type Change struct {
	Name               *string
	Disabled           *bool
	IncludeBYOKInLimit *bool
	RequireZDR         *bool
	SetLimit           bool
	Limit              decimal.NullDecimal // not Valid: no limit
	SetLimitReset      bool
	LimitReset         string
	SetExpiresAt       bool
	ExpiresAt          *time.Time // nil: never expires
}

// policy reports whether c sets a field that needs access.SetKeyPolicy. A
// field that is set counts even when set to its current or zero value.
func (c Change) policy() bool {
	return c.SetLimit || c.SetLimitReset || c.SetExpiresAt || c.IncludeBYOKInLimit != nil || c.RequireZDR != nil
}

// Service applies the management rules over a Store: members manage their
// own keys, admins and owners everyone's (an owner's only by owners), and
// a key's policy (limit, ZDR, expiry, re-enabling) is set by admins and
// owners only.
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

// List returns every key of the caller's workspace for roles that read
// them all, the caller's member's own otherwise.
func (s *Service) List(ctx context.Context, caller Key) ([]Key, error) {
	member := ""
	if !access.Can(caller.Role, access.ReadAllKeys) {
		if err := access.Require(caller.Role, access.ManageOwnKeys); err != nil {
			return nil, err
		}
		member = caller.MemberID
	}
	return s.store.APIKeys(ctx, caller.WorkspaceID, member)
}

// Get returns a key the caller may read.
func (s *Service) Get(ctx context.Context, caller Key, id string) (Key, error) {
	return s.keyFor(ctx, caller, id, access.ManageOwnKeys, access.ReadAllKeys)
}

// Create creates a key for memberID ("" for the caller's member) with c
// applied, and returns it with its plaintext, shown this once.
func (s *Service) Create(ctx context.Context, caller Key, memberID string, c Change) (Key, string, error) {
	if err := access.Require(caller.Role, access.ManageOwnKeys); err != nil {
		return Key{}, "", err
	}
	if memberID == "" {
		memberID = caller.MemberID
	}
	if memberID != caller.MemberID {
		if err := access.Require(caller.Role, access.ManageAllKeys); err != nil {
			return Key{}, "", err
		}
	}
	role, err := s.store.MemberRole(ctx, caller.WorkspaceID, memberID)
	if err != nil {
		return Key{}, "", notFound(err, "Member", memberID)
	}
	if err := access.RequireOver(caller.Role, role); err != nil {
		return Key{}, "", err
	}
	// The same rule as on update: otherwise a member would lift an admin's
	// limit by minting a new key without one.
	if c.policy() {
		if err := access.Require(caller.Role, access.SetKeyPolicy); err != nil {
			return Key{}, "", err
		}
	}
	k := Key{WorkspaceID: caller.WorkspaceID, MemberID: memberID}
	if err := s.apply(&k, c, "expires_at must be in the future."); err != nil {
		return Key{}, "", err
	}
	plaintext := Generate()
	created, err := s.store.CreateAPIKey(ctx, k, plaintext, s.now())
	if err != nil {
		return Key{}, "", notFound(err, "Member", memberID)
	}
	return created, plaintext, nil
}

// Update applies c to a key the caller may manage.
func (s *Service) Update(ctx context.Context, caller Key, id string, c Change) (Key, error) {
	k, err := s.keyFor(ctx, caller, id, access.ManageOwnKeys, access.ManageAllKeys)
	if err != nil {
		return Key{}, err
	}
	// Re-enabling is policy too: otherwise a member could undo an admin's
	// disabling of its key.
	reenable := c.Disabled != nil && !*c.Disabled && k.Disabled
	if c.policy() || reenable {
		if err := access.Require(caller.Role, access.SetKeyPolicy); err != nil {
			return Key{}, err
		}
	}
	if err := s.apply(&k, c, "expires_at must be in the future; disable the key to stop it now."); err != nil {
		return Key{}, err
	}
	updated, err := s.store.UpdateAPIKey(ctx, k)
	if err != nil {
		return Key{}, notFound(err, "Key", id)
	}
	return updated, nil
}

// Delete revokes a key the caller may manage.
func (s *Service) Delete(ctx context.Context, caller Key, id string) error {
	if _, err := s.keyFor(ctx, caller, id, access.ManageOwnKeys, access.ManageAllKeys); err != nil {
		return err
	}
	return notFound(s.store.DeleteAPIKey(ctx, caller.WorkspaceID, id), "Key", id)
}

// keyFor loads a key of the caller's workspace that the caller may act on:
// its member's own with ownAction, anyone's with allAction (and, to
// manage another member's key, the owner guard).
func (s *Service) keyFor(ctx context.Context, caller Key, id string, ownAction, allAction access.Action) (Key, error) {
	k, err := s.store.APIKey(ctx, caller.WorkspaceID, id)
	if err != nil {
		return Key{}, notFound(err, "Key", id)
	}
	need := allAction
	if k.MemberID == caller.MemberID && !access.Can(caller.Role, allAction) {
		need = ownAction
	}
	if err := access.Require(caller.Role, need); err != nil {
		return Key{}, err
	}
	if k.MemberID != caller.MemberID && allAction == access.ManageAllKeys {
		role, err := s.store.MemberRole(ctx, caller.WorkspaceID, k.MemberID)
		if err != nil {
			return Key{}, notFound(err, "Member", k.MemberID)
		}
		if err := access.RequireOver(caller.Role, role); err != nil {
			return Key{}, err
		}
	}
	return k, nil
}

// apply sets c's fields on k, refusing an expiry that is not in the future
// (tooEarly says why, naming the field).
func (s *Service) apply(k *Key, c Change, tooEarly string) error {
	if c.Name != nil {
		k.Name = *c.Name
	}
	if c.Disabled != nil {
		k.Disabled = *c.Disabled
	}
	if c.IncludeBYOKInLimit != nil {
		k.IncludeBYOKInLimit = *c.IncludeBYOKInLimit
	}
	if c.RequireZDR != nil {
		k.RequireZDR = *c.RequireZDR
	}
	if c.SetLimit {
		k.Limit = c.Limit
	}
	if c.SetLimitReset {
		k.LimitReset = c.LimitReset
	}
	if c.SetExpiresAt {
		if c.ExpiresAt != nil && !c.ExpiresAt.After(s.now()) {
			return apierr.New(http.StatusBadRequest, apierr.InvalidRequest, "%s", tooEarly).With("field", "/expires_at")
		}
		k.ExpiresAt = c.ExpiresAt
	}
	return nil
}

func notFound(err error, what, id string) error {
	if errors.Is(err, ErrNotFound) {
		return apierr.New(http.StatusNotFound, apierr.NotFound, "%s %s not found.", what, id)
	}
	return err
}
