package skins

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// The Responses request, as far as the translation reads it.
type (
	respRequest struct {
		Input              json.RawMessage `json:"input"`
		Instructions       string          `json:"instructions"`
		MaxOutputTokens    int             `json:"max_output_tokens"`
		Temperature        *float64        `json:"temperature"`
		TopP               *float64        `json:"top_p"`
		Stream             bool            `json:"stream"`
		Store              *bool           `json:"store"`
		PreviousResponseID *string         `json:"previous_response_id"`
		Tools              []struct {
			Type        string          `json:"type"`
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"tools"`
		ToolChoice        json.RawMessage `json:"tool_choice"`
		ParallelToolCalls *bool           `json:"parallel_tool_calls"`
		Reasoning         *struct {
			Effort string `json:"effort"`
		} `json:"reasoning"`
		User string `json:"user"`
	}
	respItem struct {
		Type      string          `json:"type"`
		Role      string          `json:"role"`
		Content   json.RawMessage `json:"content"`
		CallID    string          `json:"call_id"`
		Name      string          `json:"name"`
		Arguments string          `json:"arguments"`
		Output    json.RawMessage `json:"output"`
	}
	respPart struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		ImageURL string `json:"image_url"`
		FileData string `json:"file_data"`
	}
)

// ResponsesToChat translates a (stateless) Responses request into the
// Chat Completions request the gateway serves, keeping the routing
// extensions and metadata.
func ResponsesToChat(body []byte) ([]byte, error) {
	var in respRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fieldErr("must be a Responses request", "")
	}
	if in.Store != nil && *in.Store {
		return nil, fieldErr("must be false: Perpetuo keeps no response state, so send the whole conversation as input", "/store")
	}
	if in.PreviousResponseID != nil && *in.PreviousResponseID != "" {
		return nil, fieldErr("is not supported: Perpetuo keeps no response state, so send the whole conversation as input", "/previous_response_id")
	}
	out := map[string]any{}
	for _, f := range []string{"model", "models", "provider", "strategy", "session_id", "metadata"} {
		if r := gjson.GetBytes(body, f); r.Exists() {
			out[f] = json.RawMessage(r.Raw)
		}
	}
	if in.MaxOutputTokens > 0 {
		out["max_tokens"] = in.MaxOutputTokens
	}
	if in.Temperature != nil {
		out["temperature"] = *in.Temperature
	}
	if in.TopP != nil {
		out["top_p"] = *in.TopP
	}
	if in.Stream {
		out["stream"] = true
	}
	if in.User != "" {
		out["user"] = in.User
	}
	if in.ParallelToolCalls != nil {
		out["parallel_tool_calls"] = *in.ParallelToolCalls
	}
	if in.Reasoning != nil && in.Reasoning.Effort != "" {
		out["reasoning"] = map[string]string{"effort": in.Reasoning.Effort}
	}
	var msgs []chatMessage
	if in.Instructions != "" {
		msgs = append(msgs, chatMessage{Role: "system", Content: in.Instructions})
	}
	items, err := respInput(in.Input)
	if err != nil {
		return nil, err
	}
	msgs = append(msgs, items...)
	if len(msgs) == 0 {
		return nil, fieldErr("must hold at least one message", "/input")
	}
	out["messages"] = msgs
	var tools []chatTool
	for i, t := range in.Tools {
		if t.Type != "function" {
			return nil, fieldErr("must be a function tool (built-in tools are not served)", "/tools/%d/type", i)
		}
		ct := chatTool{Type: "function"}
		ct.Function.Name, ct.Function.Description, ct.Function.Parameters = t.Name, t.Description, t.Parameters
		tools = append(tools, ct)
	}
	if tools != nil {
		out["tools"] = tools
	}
	if tc := gjson.ParseBytes(in.ToolChoice); tc.Exists() {
		switch {
		case tc.Type == gjson.String:
			out["tool_choice"] = tc.String()
		case tc.Get("type").String() == "function" && tc.Get("name").String() != "":
			out["tool_choice"] = map[string]any{"type": "function", "function": map[string]string{"name": tc.Get("name").String()}}
		default:
			return nil, fieldErr(`must be auto, none, required or {"type": "function", "name": ...}`, "/tool_choice")
		}
	}
	return json.Marshal(out)
}

// respInput turns the input (a string, or items) into chat messages: a
// run of function_call items becomes one assistant message with its tool
// calls, a function_call_output a tool message.
func respInput(raw json.RawMessage) ([]chatMessage, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []chatMessage{{Role: "user", Content: s}}, nil
	}
	var items []respItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fieldErr("must be a string or a list of items", "/input")
	}
	var out []chatMessage
	for i, it := range items {
		at := fmt.Sprintf("/input/%d", i)
		switch it.Type {
		case "", "message":
			m, err := respMessage(it, at)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		case "function_call":
			tc := chatToolCall{ID: it.CallID, Type: "function"}
			tc.Function.Name, tc.Function.Arguments = it.Name, it.Arguments
			if n := len(out); n > 0 && out[n-1].Role == "assistant" && out[n-1].ToolCalls != nil {
				out[n-1].ToolCalls = append(out[n-1].ToolCalls, tc)
			} else {
				out = append(out, chatMessage{Role: "assistant", ToolCalls: []chatToolCall{tc}})
			}
		case "function_call_output":
			output, err := resultText(it.Output, at+"/output")
			if err != nil {
				return nil, err
			}
			out = append(out, chatMessage{Role: "tool", ToolCallID: it.CallID, Content: output})
		case "reasoning":
			// Another turn's reasoning: nothing a stateless upstream can use.
		default:
			return nil, fieldErr("must be message, function_call or function_call_output", "%s/type", at)
		}
	}
	return out, nil
}

func respMessage(it respItem, at string) (chatMessage, error) {
	m := chatMessage{Role: it.Role}
	var s string
	if json.Unmarshal(it.Content, &s) == nil {
		m.Content = s
		return m, nil
	}
	var parts []respPart
	if err := json.Unmarshal(it.Content, &parts); err != nil {
		return m, fieldErr("must be a string or content parts", "%s/content", at)
	}
	if it.Role == "assistant" {
		var text strings.Builder
		for _, p := range parts {
			text.WriteString(p.Text)
		}
		m.Content = text.String()
		return m, nil
	}
	var cps []chatPart
	for j, p := range parts {
		switch p.Type {
		case "input_text", "output_text":
			cps = append(cps, chatPart{Type: "text", Text: p.Text})
		case "input_image":
			cp := chatPart{Type: "image_url"}
			cp.ImageURL = &struct {
				URL string `json:"url"`
			}{p.ImageURL}
			cps = append(cps, cp)
		case "input_file":
			cp := chatPart{Type: "file"}
			cp.File = &struct {
				FileData string `json:"file_data"`
			}{p.FileData}
			cps = append(cps, cp)
		default:
			return m, fieldErr("must be input_text, input_image or input_file", "%s/content/%d/type", at, j)
		}
	}
	m.Content = cps
	return m, nil
}

// The Responses answer shapes.
type (
	response struct {
		ID                string             `json:"id"`
		Object            string             `json:"object"`
		CreatedAt         int64              `json:"created_at"`
		Status            string             `json:"status"`
		Model             string             `json:"model"`
		Provider          string             `json:"provider,omitempty"`
		Output            []any              `json:"output"`
		IncompleteDetails *incompleteDetails `json:"incomplete_details"`
		Error             json.RawMessage    `json:"error"`
		Usage             *respUsage         `json:"usage,omitempty"`
		Store             bool               `json:"store"`
	}
	incompleteDetails struct {
		Reason string `json:"reason"`
	}
	outputMessage struct {
		Type    string       `json:"type"`
		ID      string       `json:"id"`
		Status  string       `json:"status"`
		Role    string       `json:"role"`
		Content []outputText `json:"content"`
	}
	outputText struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Annotations []any  `json:"annotations"`
	}
	functionCall struct {
		Type      string `json:"type"`
		ID        string `json:"id"`
		CallID    string `json:"call_id"`
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
		Status    string `json:"status"`
	}
	respUsage struct {
		InputTokens        int `json:"input_tokens"`
		InputTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"input_tokens_details"`
		OutputTokens        int `json:"output_tokens"`
		OutputTokensDetails struct {
			ReasoningTokens int `json:"reasoning_tokens"`
		} `json:"output_tokens_details"`
		TotalTokens int             `json:"total_tokens"`
		Cost        json.RawMessage `json:"cost,omitempty"`
	}
)

var jsonNull = json.RawMessage("null")

// respUsageOf is the Responses usage of OpenAI's (the same convention:
// input tokens include the cached ones).
func respUsageOf(u gjson.Result) *respUsage {
	out := &respUsage{InputTokens: int(u.Get("prompt_tokens").Int()), OutputTokens: int(u.Get("completion_tokens").Int())}
	out.TotalTokens = out.InputTokens + out.OutputTokens
	out.InputTokensDetails.CachedTokens = int(u.Get("prompt_tokens_details.cached_tokens").Int())
	out.OutputTokensDetails.ReasoningTokens = int(u.Get("completion_tokens_details.reasoning_tokens").Int())
	if c := u.Get("cost"); c.Exists() {
		out.Cost = json.RawMessage(c.Raw)
	}
	return out
}

// statusOf is a response's status and why it is incomplete, from the
// finish reason.
func statusOf(finish string) (string, *incompleteDetails) {
	switch finish {
	case "length":
		return "incomplete", &incompleteDetails{Reason: "max_output_tokens"}
	case "content_filter":
		return "incomplete", &incompleteDetails{Reason: "content_filter"}
	}
	return "completed", nil
}

// ChatToResponse translates the gateway's chat.completion into a
// Response.
func ChatToResponse(chat []byte) ([]byte, error) {
	doc := gjson.ParseBytes(chat)
	choice := doc.Get("choices.0")
	msg := choice.Get("message")
	id := doc.Get("id").String()
	out := response{ID: id, Object: "response", CreatedAt: doc.Get("created").Int(), Model: doc.Get("model").String(),
		Provider: doc.Get("provider").String(), Output: []any{}, Error: jsonNull, Usage: respUsageOf(doc.Get("usage"))}
	out.Status, out.IncompleteDetails = statusOf(choice.Get("finish_reason").String())
	if e := choice.Get("error"); e.IsObject() {
		out.Status, out.Error = "failed", json.RawMessage(e.Raw)
	}
	if t := msg.Get("content").String(); t != "" {
		out.Output = append(out.Output, outputMessage{Type: "message", ID: "msg_" + id, Status: "completed", Role: "assistant",
			Content: []outputText{{Type: "output_text", Text: t, Annotations: []any{}}}})
	}
	for _, tc := range msg.Get("tool_calls").Array() {
		out.Output = append(out.Output, functionCall{Type: "function_call", ID: "fc_" + tc.Get("id").String(), CallID: tc.Get("id").String(),
			Name: tc.Get("function.name").String(), Arguments: tc.Get("function.arguments").String(), Status: "completed"})
	}
	return json.Marshal(out)
}
