package mockupstream

import (
	"strings"
	"testing"
)

// TestToolNameRule: the fake's Anthropic tool-name rule is ^[a-zA-Z0-9_-]{1,128}$.
func TestToolNameRule(t *testing.T) {
	for name, want := range map[string]bool{
		"get_weather": true, "A-z_09": true, strings.Repeat("a", 128): true,
		"": false, strings.Repeat("a", 129): false, "get weather": false, "tool.name": false, "é": false,
	} {
		if got := validToolName(name); got != want {
			t.Errorf("validToolName(%q) = %v, want %v", name, got, want)
		}
	}
}
