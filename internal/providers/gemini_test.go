package providers

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/perpetuo/perpetuo/internal/mockupstream"
)

// TestGeminiSafetyBlockIsContentFilter: a prompt Gemini's safety filter
// blocks (no candidates, promptFeedback.blockReason) finishes with
// content_filter, its reason kept as the native one, streamed or not.
func TestGeminiSafetyBlockIsContentFilter(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(mockupstream.NewGemini(mockupstream.Config{}))
	defer srv.Close()
	a := NewGemini(NewHTTPClient(), nil)
	c := Call{Provider: "google", BaseURL: srv.URL + "/v1beta", UpstreamModel: "mock-blocked",
		Body: []byte(`{"messages":[{"role":"user","content":"something unsafe"}]}`)}
	comp, err := a.Complete(context.Background(), c)
	require.NoError(t, err)
	require.Equal(t, "content_filter", comp.FinishReason)
	require.Equal(t, "SAFETY", gjson.GetBytes(comp.Body, "choices.0.native_finish_reason").String())
	require.Empty(t, gjson.GetBytes(comp.Body, "choices.0.message.content").String())

	st, err := a.Stream(context.Background(), c)
	require.NoError(t, err)
	_, finish, _, hasUsage, err := streamed(t, st)
	require.NoError(t, err)
	require.Equal(t, "content_filter", finish)
	require.True(t, hasUsage)
}
