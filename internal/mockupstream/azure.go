package mockupstream

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
)

// readObject reads r's body (a 413 when it is too large) and its top-level
// members (nil when it is not a JSON object).
func readObject(w http.ResponseWriter, r *http.Request) ([]byte, map[string]json.RawMessage, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, invalidRequest("request too large", "", ""))
		return nil, nil, false
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		doc = nil
	}
	return body, doc, true
}

// replay serves r through h with body instead of its own, at path.
func replay(h http.Handler, w http.ResponseWriter, r *http.Request, path string, body []byte) {
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.Body, r2.ContentLength = path, io.NopCloser(bytes.NewReader(body)), int64(len(body))
	h.ServeHTTP(w, r2)
}

// NewAzure returns a fake Azure OpenAI resource: POST
// /openai/deployments/{deployment}/chat/completions?api-version=..., the
// key in the api-key header (never Bearer), Azure's 401 and 404 bodies.
// The deployment answers as New does for a model of that name (so a
// deployment named "…fail-429" fails like that model).
func NewAzure(cfg Config) http.Handler {
	key := cfg.APIKey
	cfg.APIKey = "" // checked here, as Azure checks it
	inner := New(cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /openai/deployments/{deployment}/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		if key != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("api-key")), []byte(key)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "401",
				"message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})
			return
		}
		if r.URL.Query().Get("api-version") == "" {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "404", "message": "Resource not found"}})
			return
		}
		body, doc, ok := readObject(w, r)
		if !ok {
			return
		}
		if doc != nil {
			// The deployment is the model; the body's model is ignored.
			doc["model"], _ = json.Marshal(r.PathValue("deployment"))
			body, _ = json.Marshal(doc)
		}
		replay(inner, w, r, "/v1/chat/completions", body)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "404", "message": "Resource not found"}})
	})
	return mux
}
