package routing

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCredentialNeverPrintsItsKey: whatever verb or logger prints a
// credential (or a set of them), the provider key does not appear.
func TestCredentialNeverPrintsItsKey(t *testing.T) {
	c := Credential{Provider: "openai", APIKey: "sk-live-secret-0123456789", BaseURL: "https://api.openai.com/v1", BYOK: true}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("using", "cred", c, "set", Set{"openai": c})
	for name, s := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c), "%s": fmt.Sprintf("%s", c),
		"set %v": fmt.Sprintf("%v %+v", Set{"openai": c}, Set{"openai": c}), "slog": buf.String(),
	} {
		require.NotContains(t, s, "sk-live", name)
		require.Contains(t, s, "openai", name)
	}
}
