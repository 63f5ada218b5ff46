package mockupstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

const (
	maxBodyBytes     = 16 << 20
	perMessageTokens = 4
	defaultReply     = "Hello from the Perpetuo mock upstream."
	invalidJSON      = "We could not parse the JSON body of your request. (HINT: This likely means you aren't " +
		"using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid " +
		"JSON. If you have trouble figuring out how to fix this, please contact us through our help center at " +
		"help.openai.com.)"
)

// chatRequest is the part of an OpenAI chat completion request the mock
// reads; n and every other parameter are ignored.
type chatRequest struct {
	Model         string    `json:"model"`
	Messages      []message `json:"messages"`
	Stream        bool      `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	Stop                json.RawMessage `json:"stop"`
	Tools               []struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	} `json:"tools"`
	ToolChoice      json.RawMessage `json:"tool_choice"`
	ReasoningEffort string          `json:"reasoning_effort"`
	Reasoning       *struct {
		Effort    string `json:"effort"`
		MaxTokens *int   `json:"max_tokens"`
	} `json:"reasoning"`
}

// message is one chat message; Content is a string, an array of content
// parts or null.
type message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// imagePart is an image_url content part.
type imagePart struct {
	Type     string `json:"type"`
	ImageURL struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

// contentPart is one element of an array message content.
type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// readRequest decodes and validates a chat completion request, returning an
// OpenAI invalid_request_error when it is unacceptable.
func readRequest(r *http.Request) (chatRequest, *errorDetail) {
	var req chatRequest
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBodyBytes))
	if err != nil {
		detail := invalidRequest(fmt.Sprintf("read request body: %v", err), "", "")
		return req, &detail
	}
	if err := json.Unmarshal(body, &req); err != nil {
		detail := invalidRequest(invalidJSON, "", "")
		return req, &detail
	}
	if detail := validate(req); detail != nil {
		return req, detail
	}
	return req, nil
}

// validate checks the parameters the mock relies on, with OpenAI's messages.
func validate(req chatRequest) *errorDetail {
	var detail errorDetail
	switch {
	case req.Model == "":
		detail = invalidRequest("you must provide a model parameter", "", "")
	case req.Messages == nil:
		detail = invalidRequest("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
	case len(req.Messages) == 0:
		detail = invalidRequest("Invalid 'messages': empty array. Expected an array with minimum length 1, "+
			"but got an empty array instead.", "messages", "empty_array")
	default:
		return validateLimits(req)
	}
	return &detail
}

// validateLimits checks max_tokens, max_completion_tokens and each
// message's content type.
func validateLimits(req chatRequest) *errorDetail {
	limits := []struct {
		name  string
		value *int
	}{{"max_tokens", req.MaxTokens}, {"max_completion_tokens", req.MaxCompletionTokens}}
	for _, l := range limits {
		if name, v := l.name, l.value; v != nil && *v < 1 {
			detail := invalidRequest(fmt.Sprintf("Invalid '%s': integer below minimum value. Expected a value >= 1, "+
				"but got %d instead.", name, *v), name, "integer_below_min_value")
			return &detail
		}
	}
	if t := req.Temperature; t != nil && (*t < 0 || *t > 2) {
		detail := invalidRequest(fmt.Sprintf("Invalid 'temperature': decimal out of range. Expected a value between 0 and 2, "+
			"but got %v instead.", *t), "temperature", "decimal_out_of_range")
		return &detail
	}
	if _, err := req.stops(); err != nil {
		detail := invalidRequest("Invalid type for 'stop': expected a string or an array of strings.", "stop", "invalid_type")
		return &detail
	}
	for i, m := range req.Messages {
		if _, err := messageText(m); err != nil {
			param := fmt.Sprintf("messages.[%d].content", i)
			detail := invalidRequest(fmt.Sprintf("Invalid type for '%s': %v", param, err), param, "invalid_type")
			return &detail
		}
	}
	return nil
}

// maxWords is the completion limit in words (0 = none); max_completion_tokens
// wins over the deprecated max_tokens.
func (req chatRequest) maxWords() int {
	switch {
	case req.MaxCompletionTokens != nil:
		return *req.MaxCompletionTokens
	case req.MaxTokens != nil:
		return *req.MaxTokens
	}
	return 0
}

// includeUsage reports whether stream_options.include_usage is set.
func (req chatRequest) includeUsage() bool {
	return req.StreamOptions != nil && req.StreamOptions.IncludeUsage
}

// promptTokens counts each message's words plus perMessageTokens.
func (req chatRequest) promptTokens() int {
	n := 0
	for _, m := range req.Messages {
		text, _ := messageText(m)
		n += len(strings.Fields(text)) + perMessageTokens
	}
	return n
}

// stops reads stop: a string or an array of strings.
func (req chatRequest) stops() ([]string, error) {
	if len(req.Stop) == 0 || string(req.Stop) == "null" {
		return nil, nil
	}
	var one string
	if json.Unmarshal(req.Stop, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	err := json.Unmarshal(req.Stop, &many)
	return many, err
}

// turn is what the fake model reads of the request (see play).
func (req chatRequest) turn() turn {
	t := turn{budget: req.maxWords(), think: req.ReasoningEffort != "" || req.Reasoning != nil}
	t.stops, _ = req.stops()
	last := req.Messages[len(req.Messages)-1]
	t.lastRole = last.Role
	// The last turn's tool results, and the last user message's text.
	for i := len(req.Messages) - 1; i >= 0 && req.Messages[i].Role == "tool"; i-- {
		text, _ := messageText(req.Messages[i])
		t.results = append([]string{text}, t.results...)
	}
	if t.results != nil {
		t.lastRole = "user"
	}
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if m := req.Messages[i]; m.Role == "user" {
			text, _ := messageText(m)
			t.words = strings.Fields(text)
			var parts []imagePart
			if json.Unmarshal(m.Content, &parts) == nil {
				for _, p := range parts {
					if p.Type == "image_url" {
						t.media = append(t.media, imageNote(p.ImageURL.URL))
					}
				}
			}
			break
		}
	}
	for _, tool := range req.Tools {
		t.tools = append(t.tools, tool.Function.Name)
	}
	var choice string
	if json.Unmarshal(req.ToolChoice, &choice) == nil {
		t.noTools = choice == "none"
	} else {
		var named struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(req.ToolChoice, &named) == nil {
			t.forced = named.Function.Name
		}
	}
	return t
}

// imageNote acknowledges an image by URL, or by media type for a data URL.
func imageNote(url string) string {
	if rest, ok := strings.CutPrefix(url, "data:"); ok {
		mediaType, _, _ := strings.Cut(rest, ";")
		return mediaNote("image", "", mediaType)
	}
	return mediaNote("image", url, "")
}

// messageText returns the text of a message: its string content, or its
// text parts joined with "\n". Null or absent content has no text.
func messageText(m message) (string, error) {
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return s, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", errors.New("expected a string or an array of content parts")
	}
	var texts []string
	for _, p := range parts {
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n"), nil
}
