// Package keys issues, authenticates and manages Perpetuo API keys.
//
// A key is "pk_" + 43 base62 characters (256 bits of entropy). Only its
// SHA-256 hash and a short masked label are stored; the plaintext is shown
// once, at creation. Authentication is a hash lookup served from an in-memory
// cache, so steady-state requests cost no database round trip. Service holds
// the management rules: who may create, read, change and revoke which keys.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Prefix starts every plaintext key.
const Prefix = "pk_"

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Key is an authenticated API key and who it acts for.
type Key struct {
	ID                 string
	WorkspaceID        string
	MemberID           string
	Role               string
	Name               string
	Label              string
	Limit              decimal.NullDecimal
	LimitReset         string // "", "daily", "weekly", "monthly"
	IncludeBYOKInLimit bool
	RequireZDR         bool
	// GuardrailID is the key's own guardrail, MemberGuardrailID its
	// member's ("" for none; the workspace default then governs).
	GuardrailID       string
	MemberGuardrailID string
	// Operator: the key is the deployment operator's (beyond its
	// workspace role): it creates workspaces and decides which may use
	// the operator's own provider keys. Granted only by bootstrap or
	// `perpetuo keys create --operator`, never through the API.
	Operator  bool
	ExpiresAt *time.Time
	Disabled  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Generate returns a new random plaintext key.
func Generate() string {
	var sb strings.Builder
	sb.WriteString(Prefix)
	max := big.NewInt(int64(len(base62)))
	for range 43 {
		n, _ := rand.Int(rand.Reader, max) // crypto/rand never fails on supported platforms
		sb.WriteByte(base62[n.Int64()])
	}
	return sb.String()
}

// Hash is what the database stores and looks keys up by.
func Hash(plaintext string) []byte {
	h := sha256.Sum256([]byte(plaintext))
	return h[:]
}

// Label masks a plaintext key for display: "pk_AbC…xYz".
func Label(plaintext string) string {
	if len(plaintext) < len(Prefix)+6 {
		return Prefix + "…"
	}
	return plaintext[:len(Prefix)+3] + "…" + plaintext[len(plaintext)-3:]
}

// WellFormed reports whether s looks like a Perpetuo key, so garbage is
// refused without a lookup.
func WellFormed(s string) bool {
	if !strings.HasPrefix(s, Prefix) || len(s) < len(Prefix)+16 || len(s) > 256 {
		return false
	}
	for i := len(Prefix); i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
