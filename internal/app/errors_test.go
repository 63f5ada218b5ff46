package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/require"

	"github.com/perpetuo/perpetuo/internal/keys"
	perpetuo "github.com/perpetuo/perpetuo/sdk/go"
)

// requireEnvelope checks the error envelope every route uses.
func requireEnvelope(t *testing.T, doc map[string]any, status int, typ string) map[string]any {
	t.Helper()
	e, ok := doc["error"].(map[string]any)
	require.True(t, ok, "no error envelope in %v", doc)
	require.EqualValues(t, status, e["code"])
	require.Equal(t, typ, e["type"])
	md := e["metadata"].(map[string]any)
	require.Equal(t, typ, md["error_type"])
	require.NotEmpty(t, e["message"])
	return e
}

func TestInvalidRequestsGetTheRightError(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	msg := `"messages":[{"role":"user","content":"` + secretPrompt + `"}]`
	cases := []struct {
		name, key, body string
		status          int
		typ, field      string
		says            string
	}{
		{"truncated json", e.key, `{"model":"mock/echo",`, 400, "invalid_request", "", "not valid JSON: it ends too early"},
		{"bad json", e.key, `{"model": zebra}`, 400, "invalid_request", "", "not valid JSON (error at byte 11: a value was expected)"},
		{"empty body", e.key, ``, 400, "invalid_request", "", "body is empty"},
		{"not an object", e.key, `[1,2]`, 400, "invalid_request", "/", "must be an object"},
		{"missing messages", e.key, `{"model":"mock/echo"}`, 400, "invalid_request", "/messages", ""},
		{"empty messages", e.key, `{"model":"mock/echo","messages":[]}`, 400, "invalid_request", "/messages", ""},
		{"messages wrong type", e.key, `{"model":"mock/echo","messages":"hi"}`, 400, "invalid_request", "/messages", ""},
		{"temperature wrong type", e.key, `{"model":"mock/echo",` + msg + `,"temperature":"hot"}`, 400, "invalid_request", "/temperature", ""},
		{"bad role", e.key, `{"model":"mock/echo","messages":[{"role":"wizard","content":"` + secretPrompt + `"}]}`, 400, "invalid_request", "/messages/0/role", ""},
		{"bad strategy", e.key, `{"model":"mock/echo",` + msg + `,"strategy":"random"}`, 400, "invalid_request", "/strategy", ""},
		{"max_tokens zero", e.key, `{"model":"mock/echo",` + msg + `,"max_tokens":0}`, 400, "invalid_request", "/max_tokens", ""},
		{"no model", e.key, `{` + msg + `}`, 400, "invalid_request", "/model", ""},
		{"unknown model", e.key, `{"model":"nobody/nothing",` + msg + `}`, 404, "not_found", "", ""},
		// The model is checked (no I/O) before the body is validated in full.
		{"unknown model, invalid body", e.key, `{"messages":"zebra","model":"nobody/nothing"}`, 404, "not_found", "", ""},
		{"unknown fallback model, invalid body", e.key, `{"model":"mock/echo","models":["nobody/nothing"],"messages":[{"role":"zebra"}]}`, 404, "not_found", "", ""},
		{"too many messages", e.key, `{"model":"mock/echo","messages":[` + strings.Repeat(`{"role":"user","content":"x"},`, 10000) + `{"role":"user","content":"x"}]}`, 400, "invalid_request", "/messages", "at most 10000 items"},
		{"no credential for model", e.key, `{"model":"test/unreachable",` + msg + `}`, 404, "no_endpoints", "", ""},
		{"missing key", "", `{"model":"mock/echo",` + msg + `}`, 401, "authentication", "", ""},
		{"malformed key", "sk-not-ours", `{"model":"mock/echo",` + msg + `}`, 401, "authentication", "", ""},
		{"unknown key", keys.Generate(), `{"model":"mock/echo",` + msg + `}`, 401, "authentication", "", ""},
		{"too large", e.key, `{"model":"mock/echo","messages":[{"role":"user","content":"` + strings.Repeat("a", 9<<20) + `"}]}`, 413, "payload_too_large", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, doc := e.post("/v1/chat/completions", tc.key, tc.body)
			require.Equal(t, tc.status, status, "%v", doc)
			er := requireEnvelope(t, doc, tc.status, tc.typ)
			require.NotContains(t, er["message"], "zebra", "errors never echo request values")
			if tc.field != "" {
				require.Equal(t, tc.field, er["metadata"].(map[string]any)["field"])
			}
			require.Contains(t, er["message"], tc.says)
		})
	}
}

func TestOpenAIClientSeesGatewayErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	p := userMessage("hi")
	p.Model = "nobody/nothing"
	_, err := e.openai.Chat.Completions.New(context.Background(), p)
	var oe *openai.Error
	require.True(t, errors.As(err, &oe), "%v", err)
	require.Equal(t, 404, oe.StatusCode)
	require.Contains(t, oe.Message, "not in the catalog")
	require.Equal(t, "not_found", oe.Type)
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	status, _, doc := e.post("/v1/nothing-here", e.key, `{}`)
	require.Equal(t, 404, status)
	requireEnvelope(t, doc, 404, "not_found")
	status, _, doc = e.post("/v1/models", e.key, `{}`)
	require.Equal(t, 405, status)
	requireEnvelope(t, doc, 405, "method_not_allowed")
}

func TestGenerationLookupErrors(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	resp, err := e.sdk.GetGenerationWithResponse(context.Background(), nil)
	require.NoError(t, err)
	require.Equal(t, 400, resp.StatusCode(), "id is required: %s", resp.Body)
	resp2, err := e.sdk.GetGenerationWithResponse(context.Background(), &perpetuo.GetGenerationParams{Id: "gen-0000000000AAAAAAAAAAAAAAAA"})
	require.NoError(t, err)
	require.Equal(t, 404, resp2.StatusCode(), "%s", resp2.Body)
	require.Contains(t, string(resp2.Body), `"type":"not_found"`)
}

func TestOperationalRoutes(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	get := func(path string) (int, string) {
		resp, err := http.Get(e.srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	status, body := get("/healthz")
	require.Equal(t, 200, status)
	require.Contains(t, body, `"ok"`)
	status, _ = get("/readyz")
	require.Equal(t, 200, status)
	status, body = get("/docs/")
	require.Equal(t, 200, status)
	require.Contains(t, body, "swagger-ui")
	status, body = get("/docs/swagger-initializer.js")
	require.Equal(t, 200, status)
	require.Contains(t, body, `url: "/openapi.json"`, "Swagger UI must load this server's spec, not a CDN's")
	status, body = get("/openapi.json")
	require.Equal(t, 200, status)
	require.Contains(t, body, `"openapi":"3.0.3"`)
	require.Contains(t, body, `"servers":[{"description":"This gateway","url":"/"}]`,
		"Swagger UI must try requests against the gateway it was loaded from")
	// A client that does not take gzip gets the same document, plain.
	req, err := http.NewRequest("GET", e.srv.URL+"/openapi.json", nil)
	require.NoError(t, err)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	plain, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Empty(t, resp.Header.Get("Content-Encoding"))
	require.JSONEq(t, body, string(plain))
	status, body = get("/openapi.yaml")
	require.Equal(t, 200, status)
	require.True(t, strings.HasPrefix(body, "openapi: 3.0.3"))
	status, _ = get("/metrics")
	require.Equal(t, 200, status)

	e.app.Drain()
	status, body = get("/readyz")
	require.Equal(t, 503, status, "a draining gateway is not ready")
	require.Contains(t, body, `"type":"unavailable"`)
}

// TestBadNumbersNameTheFieldNotGoTypes: out-of-range and non-finite
// numbers are refused with the field and the rule, never a Go type or the
// value sent.
func TestBadNumbersNameTheFieldNotGoTypes(t *testing.T) {
	t.Parallel()
	e := setup(t, nil)
	for _, tc := range []struct{ name, field, body string }{
		{"max_tokens beyond any model", "/max_tokens", `"max_tokens":99999999999999999999`},
		{"max_completion_tokens beyond any model", "/max_completion_tokens", `"max_completion_tokens":100000001`},
		{"a non-finite temperature", "/temperature", `"temperature":1e999`},
		{"a seed beyond 64 bits", "/seed", `"seed":99999999999999999999`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, doc := call(t, e.srv.URL, "POST", "/v1/chat/completions", e.key,
				`{"model":"mock/echo",`+tc.body+`,"messages":[{"role":"user","content":"hi"}]}`)
			require.Equal(t, 400, status)
			er := requireEnvelope(t, doc, 400, "invalid_request")
			msg := er["message"].(string)
			require.Equal(t, tc.field, er["metadata"].(map[string]any)["field"], msg)
			for _, leak := range []string{"Go ", "json.Number", "struct", "float64", "99999999999999999999", "1e999", "unmarshal"} {
				require.NotContains(t, msg, leak)
			}
		})
	}
}
