package main

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// prompt is the user message of every request: about 30 words, which the
// mock echoes back as the reply.
const prompt = "Summarise in two short sentences why connection pooling and careful timeouts matter " +
	"for an API gateway that relays chat completions to several upstream language model providers under heavy load today."

// maxTokens is the max_tokens of every request; above the prompt's length,
// so the whole prompt is echoed.
const maxTokens = 50

// Models requested directly from the mock and through the gateway.
const (
	directModel  = "echo"
	gatewayModel = "mock/echo"
)

// expectedReply is what the mock answers: the prompt's words, single-spaced,
// at most maxTokens of them.
var expectedReply = func() string {
	words := strings.Fields(prompt)
	return strings.Join(words[:min(len(words), maxTokens)], " ")
}()

// scenario is one upstream behaviour and how many requests to send in each
// mode (at scale 1, per target).
type scenario struct {
	name     string
	about    string
	upstream mockupstream.Config
	json     int // non-streaming requests
	stream   int // streaming requests
}

// scenarios are every scenario, in the order they run.
var scenarios = []scenario{
	{
		name:     "fast",
		about:    "mock answers at once, streams unpaced: the difference is the gateway's own cost",
		upstream: mockupstream.Config{},
		json:     10000,
		stream:   3000,
	},
	{
		name:     "realistic",
		about:    "mock waits 20ms before the response / first chunk, then streams 200 tokens/s",
		upstream: mockupstream.Config{TTFT: 20 * time.Millisecond, TokensPerSecond: 200},
		json:     2000,
		stream:   600,
	},
}

// selectScenarios resolves the -scenario flag.
func selectScenarios(which string) ([]scenario, error) {
	if which == "all" {
		return scenarios, nil
	}
	if s, ok := findScenario(scenarios, which); ok {
		return []scenario{s}, nil
	}
	return nil, fmt.Errorf("unknown -scenario %q: use fast, realistic or all", which)
}

// handler is the mock upstream behaving as the scenario says.
func (s scenario) handler() http.Handler { return mockupstream.New(s.upstream) }

// requests is how many requests to send per target in a mode at scale.
func (s scenario) requests(stream bool, scale float64) int {
	n := s.json
	if stream {
		n = s.stream
	}
	return max(1, int(math.Round(float64(n)*scale)))
}

// chatBody is the JSON request for model; streaming requests also ask for
// the usage chunk, as most streaming clients do.
func chatBody(model string, stream bool) []byte {
	b := fmt.Sprintf(`{"model":%q,"messages":[`+
		`{"role":"system","content":"You are a concise technical assistant."},`+
		`{"role":"user","content":%q}],"max_tokens":%d,"temperature":0.2`, model, prompt, maxTokens)
	if stream {
		b += `,"stream":true,"stream_options":{"include_usage":true}`
	}
	return []byte(b + "}")
}

// findScenario returns the scenario named name among sc.
func findScenario(sc []scenario, name string) (scenario, bool) {
	for _, s := range sc {
		if s.name == name {
			return s, true
		}
	}
	return scenario{}, false
}
