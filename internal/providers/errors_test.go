package providers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/apierr"
	"github.com/perpetuo/perpetuo/internal/sse"
)

func TestRejectedCredentialNamesWhoMustAct(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		byok   bool
		status int
		says   []string
		never  string
	}{
		{"operator 401", false, 401, []string{"the operator's credential", "an operator must"}, "workspace"},
		{"operator 403", false, 403, []string{"the operator's credential", "(status 403)"}, "workspace"},
		{"workspace 401", true, 401, []string{"the workspace's own credential", "a workspace admin must"}, "operator"},
		{"workspace 403", true, 403, []string{"the workspace's own credential", "a workspace admin must"}, "operator"},
		{"operator 429", false, 429, []string{"rate limiting the operator's credential"}, "workspace"},
		{"workspace 429", true, 429, []string{"rate limiting the workspace's own credential"}, "operator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := classifyStatus(Call{Provider: "p", BYOK: tc.byok}, tc.status, http.Header{}, []byte(`{"error":{"message":"bad key sk-abcdef123456"}}`))
			for _, s := range tc.says {
				require.Contains(t, e.Client.Message, s)
			}
			require.NotContains(t, e.Client.Message, tc.never)
			require.NotContains(t, e.Client.Message, "sk-", "only 400/422 quote the upstream")
			require.True(t, e.Retryable)
		})
	}
}

func TestRejectedRequestQuotesAScrubbedReason(t *testing.T) {
	t.Parallel()
	body := `{"error":{"message":"Invalid key sk-live-abcdefghijklmnopqrstuvwxyz123456 for prompt: 'tell me the secret plan for the merger please do not leak'"}}`
	for _, status := range []int{400, 422} {
		e := classifyStatus(Call{Provider: "p"}, status, http.Header{}, []byte(body))
		require.Equal(t, apierr.InvalidRequest, e.Client.Type)
		require.Equal(t, "Provider p rejected the request; fix it before sending it again. Its reason: Invalid key [redacted] for prompt: [removed]",
			e.Client.Message)
		require.NotContains(t, e.Error(), "sk-live", "nor does the error logs print")
	}
	e := classifyStatus(Call{Provider: "p"}, 400, http.Header{}, []byte(`{}`))
	require.True(t, strings.HasSuffix(e.Client.Message, "Its reason: none given"), e.Client.Message)
}

// TestAnswerFailuresAreNamed: a failure says how far the upstream got:
// never reached, closed before answering, cut off mid-answer, or answered
// something malformed.
func TestAnswerFailuresAreNamed(t *testing.T) {
	t.Parallel()
	const chunk = `data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"a"}}]}` + "\n\n"
	for _, tc := range []struct {
		name    string
		handler http.Handler // nil: nothing listens
		stream  bool
		status  int // the providers.Error's upstream status
		typ     apierr.Type
		says    string
	}{
		{"nothing listens", nil, false, 0, apierr.ProviderUnavailable, "could not be reached"},
		{"closed before answering", hangUp("", ""), false, 0, apierr.ProviderUnavailable, "closed the connection without answering"},
		{"body cut off", hangUp("application/json", `{"choices":[{"mess`), false, 200, apierr.ProviderUnavailable, "cut off its answer"},
		{"stream cut off mid-event", hangUp("text/event-stream", chunk+`data: {"choi`), true, 200, apierr.ProviderUnavailable, "cut off its answer"},
		{"stream ended without [DONE]", reply("text/event-stream", chunk), true, 200, apierr.ProviderUnavailable, "cut off its answer"},
		{"malformed body", reply("text/html", "<html>oops</html>"), false, 200, apierr.ProviderError, "malformed answer"},
		{"body broken after its choices", reply("application/json", `{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,}}`), false, 200, apierr.ProviderError, "malformed answer"},
		{"body of JSON, not an object", reply("application/json", `[{"choices":[]}]`), false, 200, apierr.ProviderError, "malformed answer"},
		{"malformed chunk", reply("text/event-stream", chunk+"data: <html>oops</html>\n\n"), true, 200, apierr.ProviderError, "malformed answer"},
		{"chunk of JSON, not an object", reply("text/event-stream", chunk+"data:  [{\"id\":1}]\n\n"), true, 200, apierr.ProviderError, "malformed answer"},
		{"chunk of a JSON string", reply("text/event-stream", chunk+"data: \"{}\"\n\n"), true, 200, apierr.ProviderError, "malformed answer"},
		{"error chunk", reply("text/event-stream", chunk+`data: {"error":{"code":503,"message":"overloaded"}}`+"\n\n"), true, 200, apierr.ProviderOverloaded, ""},
		{"error chunk, its name escaped", reply("text/event-stream", chunk+`data: {"\u0065rror":{"code":503,"message":"overloaded"}}`+"\n\n"), true, 200, apierr.ProviderOverloaded, ""},
		{"line too long", reply("text/event-stream", "data: "+strings.Repeat("x", sse.MaxLineSize+1)+"\n\n"), true, 200, apierr.ProviderError, "malformed answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			if tc.handler == nil {
				srv.Close()
			} else {
				defer srv.Close()
			}
			a := NewOpenAI(NewHTTPClient(), nil)
			c := Call{Provider: "p", BaseURL: srv.URL + "/v1", UpstreamModel: "m", Body: []byte(`{"messages":[]}`)}
			err := streamOrComplete(a, c, tc.stream)
			requireUpstreamError(t, err, tc.status, tc.typ, true)
			require.Contains(t, err.(*Error).Client.Message, tc.says)
			require.NotContains(t, err.(*Error).Client.Message, "oops")
		})
	}
}

// streamOrComplete makes the call and returns the first error it meets.
func streamOrComplete(a Adapter, c Call, stream bool) error {
	if !stream {
		_, err := a.Complete(context.Background(), c)
		return err
	}
	st, err := a.Stream(context.Background(), c)
	if err != nil {
		return err
	}
	defer st.Close()
	for {
		if _, err := st.Next(); err != nil {
			return err
		}
	}
}

func reply(contentType, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		_, _ = io.WriteString(w, body)
	})
}

// hangUp sends head (if any) after 200 headers, then drops the connection.
func hangUp(contentType, head string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if head != "" {
			w.Header().Set("Content-Type", contentType)
			_, _ = io.WriteString(w, head)
			w.(http.Flusher).Flush()
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})
}
