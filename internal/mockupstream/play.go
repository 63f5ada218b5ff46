package mockupstream

import (
	"encoding/json"
	"strings"
)

// turn is what the fake model reads of a request, whichever wire format
// it came in: both fakes play the same model, so one conformance suite
// checks every adapter against the same answers.
type turn struct {
	lastRole string   // of the last message
	words    []string // of the last user message's text
	results  []string // tool results in the last turn
	media    []string // images and documents of the last user message, as acknowledged
	tools    []string // names of the tools offered
	forced   string   // the tool tool_choice names
	noTools  bool     // tool_choice none
	think    bool     // reasoning asked for
	stops    []string
	budget   int // output tokens allowed, 0 = no limit
}

// answer is the fake model's reply. Every word (thinking included) is one
// output token.
type answer struct {
	thinking []string
	text     []string
	tool     *toolUse
	// stop is why it ended: "" (its turn was over), "stop_sequence",
	// "max_tokens" or "tool_use".
	stop    string
	stopSeq *string
}

type toolUse struct {
	ID, Name string
	Input    json.RawMessage
}

// play answers a turn:
//   - tool results are answered "Tool said: <their text>";
//   - with tools offered (and not forbidden), a user turn is answered by a
//     call of the forced (else first) tool with input {"query": <text>};
//   - otherwise the text is echoed, with the media acknowledged, or
//     defaultReply when there is neither;
//   - reasoning asked for adds "Considering <up to 5 words>" first;
//   - a stop sequence inside a word ends the text before that word, and
//     the budget cuts what is left.
func play(t turn, idPrefix string) answer {
	var a answer
	budget := t.budget
	if t.think {
		a.thinking = append([]string{"Considering"}, t.words[:min(len(t.words), 5)]...)
		budget -= len(a.thinking)
	}
	switch {
	case len(t.results) > 0:
		a.text = append([]string{"Tool", "said:"}, strings.Fields(strings.Join(t.results, " "))...)
	case len(t.tools) > 0 && !t.noTools && t.lastRole == "user":
		name := t.tools[0]
		if t.forced != "" {
			name = t.forced
		}
		input, _ := json.Marshal(map[string]string{"query": strings.Join(t.words, " ")})
		a.tool, a.stop = &toolUse{ID: newID(idPrefix), Name: name, Input: input}, "tool_use"
		return a
	case len(t.words) == 0 && len(t.media) == 0:
		a.text = strings.Fields(defaultReply)
	default:
		a.text = append(append([]string{}, t.words...), t.media...)
	}
cut:
	for i, w := range a.text {
		for _, stop := range t.stops {
			if stop != "" && strings.Contains(w, stop) {
				a.text, a.stop, a.stopSeq = a.text[:i], "stop_sequence", &stop
				break cut
			}
		}
	}
	if t.budget > 0 && len(a.text) > budget {
		a.text, a.stop, a.stopSeq = a.text[:max(budget, 0)], "max_tokens", nil
	}
	return a
}

// outputTokens counts the answer's tokens: a word each, and a tool call's
// name and input words.
func (a answer) outputTokens() int {
	n := len(a.thinking) + len(a.text)
	if a.tool != nil {
		n += 1 + len(strings.Fields(string(a.tool.Input)))
	}
	return n
}

// mediaNote acknowledges an image or document: by URL, or by media type
// for inline data.
func mediaNote(kind, url, mediaType string) string {
	if kind == "document" {
		return "[document]"
	}
	if url != "" {
		return "[image url " + url + "]"
	}
	return "[image base64 " + mediaType + "]"
}
