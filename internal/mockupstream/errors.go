package mockupstream

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// apiError is the body of an OpenAI error response.
type apiError struct {
	Error errorDetail `json:"error"`
}

// errorDetail mirrors OpenAI's error object; Param and Code are null when
// nil.
type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// invalidRequest is a 400 invalid_request_error naming the faulty parameter
// and error code, either of which may be empty for null.
func invalidRequest(message, param, code string) errorDetail {
	return errorDetail{
		Message: message,
		Type:    "invalid_request_error",
		Param:   nullable(param),
		Code:    nullable(code),
	}
}

// failure is the error OpenAI returns with status.
func failure(status int, model string) errorDetail {
	switch {
	case status == http.StatusTooManyRequests:
		return errorDetail{
			Message: fmt.Sprintf("Rate limit reached for %s in organization org-mock on requests per min (RPM): "+
				"Limit 3, Used 3, Requested 1. Please try again in 1s.", model),
			Type: "requests",
			Code: nullable("rate_limit_exceeded"),
		}
	case status == http.StatusUnauthorized:
		return errorDetail{
			Message: "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
			Type:    "invalid_request_error",
			Code:    nullable("invalid_api_key"),
		}
	case status == http.StatusServiceUnavailable:
		return errorDetail{Message: "The engine is currently overloaded, please try again later.", Type: "server_error"}
	case status >= 500:
		return errorDetail{
			Message: "The server had an error while processing your request. Sorry about that!",
			Type:    "server_error",
		}
	default:
		return invalidRequest(fmt.Sprintf("Mock failure with status %d.", status), "", "")
	}
}

// writeError writes an OpenAI error response; 429 adds "Retry-After: 1".
func writeError(w http.ResponseWriter, status int, detail errorDetail) {
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, apiError{Error: detail})
}

// writeJSON writes v as a JSON response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("encode response: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
