// Package providers holds one adapter per upstream API family. An adapter
// speaks its provider's real wire format and presents the result to the
// gateway in OpenAI's Chat Completions shape: a chat.completion body, or a
// sequence of chat.completion.chunk events. Upstream failures come back as
// *Error, classified once here into Perpetuo's error catalog.
package providers

import (
	"context"
	"fmt"
	"net/http"
)

// Call is one attempt at one upstream endpoint.
type Call struct {
	Provider      string // slug, for messages
	BaseURL       string // e.g. https://api.openai.com/v1
	APIKey        string
	UpstreamModel string
	Body          []byte // the client's request JSON, extensions included
	Stream        bool
}

// Usage is what the upstream reported it used.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	ReasoningTokens  int
	CachedTokens     int
}

// Completion is a finished non-streaming response.
type Completion struct {
	Body         []byte // chat.completion JSON as the upstream sent it (translated to OpenAI's shape if needed)
	Usage        Usage
	HasUsage     bool
	UpstreamID   string
	FinishReason string
}

// Stream yields chat.completion.chunk JSON documents until io.EOF (the
// upstream's end of stream). Close releases the connection; it must be called.
type Stream interface {
	Next() ([]byte, error)
	Close() error
}

// Adapter calls one API family.
type Adapter interface {
	Complete(ctx context.Context, c Call) (*Completion, error)
	Stream(ctx context.Context, c Call) (Stream, error)
}

// Registry maps API families ("openai", ...) to adapters.
type Registry map[string]Adapter

// NewRegistry returns the adapters Perpetuo ships, sharing one HTTP client.
func NewRegistry(client *http.Client) Registry {
	return Registry{"openai": NewOpenAI(client)}
}

// NewHTTPClient returns the client adapters share: pooled connections, and
// redirects never followed, so a credential is never sent to another host.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func endpointURL(base, path string) (string, error) {
	if base == "" {
		return "", fmt.Errorf("no base URL configured")
	}
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + path, nil
}
