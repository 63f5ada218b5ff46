// Package jsonedit sets and deletes the top-level members of a JSON object
// in one pass over the document and one allocation for the result. It
// replaces chains of sjson calls on the request path, each of which
// re-scanned and re-copied the whole body.
//
// Object's semantics, which match those chains for what the gateway does
// (Default, which sjson had no form of, excepted):
//   - A member that is present keeps its place, key bytes and surrounding
//     whitespace; only its value is replaced.
//   - A missing member is appended after the last remaining one, in the
//     order of the edits, with no whitespace added.
//   - A deleted member goes with one comma next to it; the whitespace of
//     the members that remain is kept.
//   - Keys are compared decoded: "mod\u0065l" is the member model.
//   - A key that occurs more than once is edited at every occurrence (each
//     one replaced, or each one deleted), so parsers that keep the first
//     and parsers that keep the last occurrence (encoding/json) read the
//     same new value. sjson edited only the first one.
//   - When several edits name the same member, the last one wins, in the
//     member's place: a deletion followed by a set replaces the value where
//     it is (sjson would have moved the member to the end).
package jsonedit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotObject is returned, wrapped with where the problem is, for a
// document that is not exactly one valid JSON object.
var ErrNotObject = errors.New("not a JSON object")

// ErrInvalidValue is returned, wrapped with the key, for an edit whose raw
// value is not valid JSON: Object's result is always valid JSON.
var ErrInvalidValue = errors.New("invalid JSON value")

// Edit is one change to a top-level member, made by Raw, String, Int, Bool
// or Delete.
type Edit struct {
	key     string
	aliases []string
	value   []byte // raw JSON; unused by a deletion
	del     bool
	keep    bool // a default: a member that is present stays as it is
}

var (
	jsonTrue  = []byte("true")
	jsonFalse = []byte("false")
)

// Raw sets key to value, which must be valid JSON. value is not copied; it
// must not change before Object returns.
func Raw(key string, value []byte) Edit { return Edit{key: key, value: value} }

// String sets key to the JSON string s, escaped as json.Marshal escapes it.
func String(key, s string) Edit {
	return Edit{key: key, value: AppendQuoted(make([]byte, 0, quotedLen(s)), s)}
}

// Int sets key to the JSON number n.
func Int(key string, n int) Edit {
	return Edit{key: key, value: strconv.AppendInt(nil, int64(n), 10)}
}

// Bool sets key to true or false.
func Bool(key string, b bool) Edit {
	if b {
		return Edit{key: key, value: jsonTrue}
	}
	return Edit{key: key, value: jsonFalse}
}

// Default adds key with value (valid JSON) only when the object has no
// member of that name; one that is present keeps its value.
func Default(key string, value []byte) Edit { return Edit{key: key, value: value, keep: true} }

// Delete removes every member named key.
func Delete(key string) Edit { return Edit{key: key, del: true} }

// Or makes e apply to the members named any of aliases as well as its key;
// only when none of them is present does a set append e's key. It serves
// fields with synonyms: Int("max_completion_tokens", n).Or("max_tokens")
// caps whichever the client sent, or adds max_completion_tokens.
func (e Edit) Or(aliases ...string) Edit {
	e.aliases = aliases
	return e
}

// names reports whether e applies to the member whose decoded key is key.
func (e *Edit) names(key []byte) bool {
	if string(key) == e.key {
		return true
	}
	for _, a := range e.aliases {
		if string(key) == a {
			return true
		}
	}
	return false
}

// Object returns doc, which must be one JSON object (whitespace around it
// is kept), with edits applied to its top-level members as described in
// the package documentation. doc is only read; the result is a new slice
// of exactly its length.
func Object(doc []byte, edits ...Edit) ([]byte, error) {
	for i := range edits {
		if e := &edits[i]; !e.del && !validValue(e.value) {
			// A copy of the key: letting e.key escape would move the callers'
			// edits (and each Or's aliases) to the heap on every call.
			return nil, fmt.Errorf("value for %q: %w", strings.Clone(e.key), ErrInvalidValue)
		}
	}
	p := plan{doc: doc, edits: edits, applied: make([]bool, len(edits)), pending: -1}
	var buf [16]cut // the cuts' first backing array: a few edits allocate nothing
	cuts := buf[:0]
	t, err := top(doc)
	if err != nil {
		return nil, err
	}
	p.insertAt = t.open + 1
	for {
		m, ok, err := t.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		cuts = p.member(cuts, m)
	}
	if p.pending >= 0 { // every member was deleted: drop the whitespace before the first, too
		cuts = append(cuts, cut{from: t.open + 1, to: p.insertAt, edit: -1})
	}
	return p.render(cuts), nil
}

// Members calls fn with each top-level member of doc, which must be one
// JSON object, in document order: its decoded key and its raw value. Both
// are slices of doc (a key with escapes is decoded into a copy) and valid
// only during the call. It stops early when fn returns false; a syntax
// error is reported after the members before it were passed. doc is only
// read, and nothing is copied: callers that want a few members of a large
// body need not copy it as gjson.ParseBytes does.
func Members(doc []byte, fn func(key, value []byte) bool) error {
	return Spans(doc, func(key []byte, at Span) bool { return fn(key, doc[at.ValStart:at.ValEnd]) })
}

// Span is where one top-level member lies in its document: the key from
// its opening quote to past its closing one, and the raw value.
type Span struct{ KeyStart, KeyEnd, ValStart, ValEnd int }

// Spans is Members with where each member lies in doc instead of its
// value: the whole document is checked as it goes, so a caller that walks
// every member has validated it, in the same single pass.
func Spans(doc []byte, fn func(key []byte, at Span) bool) error {
	t, err := top(doc)
	if err != nil {
		return err
	}
	for {
		m, ok, err := t.next()
		if err != nil || !ok {
			return err
		}
		if !fn(memberKey(doc, m), Span{KeyStart: m.keyStart, KeyEnd: m.keyEnd, ValStart: m.valStart, ValEnd: m.valEnd}) {
			return nil
		}
	}
}

// topLevel walks the members of a document that must be one JSON object,
// for Object and Members.
type topLevel struct {
	s    scanner
	open int  // where the object's brace is
	more bool // a member follows
	past bool // a member was returned: what follows it is not scanned yet
}

// top scans doc up to its first member.
func top(doc []byte) (topLevel, error) {
	t := topLevel{s: scanner{doc: doc}}
	t.s.ws()
	if t.s.peek() != '{' {
		return t, syntaxError(&t.s)
	}
	t.open = t.s.i
	t.s.i++
	t.s.ws()
	if t.s.peek() == '}' {
		t.s.i++
	} else {
		t.more = true
	}
	return t, nil
}

// next returns the next member, or ok false once the object has ended and
// nothing but whitespace follows it.
func (t *topLevel) next() (m member, ok bool, err error) {
	if t.past {
		t.past = false
		if t.more, ok = t.s.next('}'); !ok {
			return m, false, syntaxError(&t.s)
		}
	}
	if !t.more {
		if t.s.ws(); t.s.i != len(t.s.doc) {
			return m, false, syntaxError(&t.s)
		}
		return m, false, nil
	}
	if m, ok = t.s.member(1); !ok {
		return m, false, syntaxError(&t.s)
	}
	t.past = true
	return m, true, nil
}

func syntaxError(s *scanner) error {
	if s.i >= len(s.doc) {
		return fmt.Errorf("%w: unexpected end at offset %d", ErrNotObject, s.i)
	}
	return fmt.Errorf("%w: unexpected %q at offset %d", ErrNotObject, s.doc[s.i], s.i)
}

func validValue(v []byte) bool {
	s := scanner{doc: v}
	s.ws()
	if !s.value(0) {
		return false
	}
	s.ws()
	return s.i == len(v)
}

// plan decides, during the scan, which spans of doc to cut or replace;
// render then copies doc once with them applied.
type plan struct {
	doc     []byte
	edits   []Edit
	applied []bool // applied[k]: edits[k] matched a member
	// kept: a member before the current one stays. pending: where the run
	// of deleted members at the start began, until one is kept (-1: none).
	kept     bool
	pending  int
	insertAt int // the end of the last member's value, or just past '{'
}

// cut replaces doc[from:to] with the value of edits[edit], or with nothing
// when edit is -1. (An index, not the value: a pointer stored in cuts would
// make escape analysis move plan's slices to the heap.)
type cut struct{ from, to, edit int }

// member adds to cuts the edit, if any, of one member as the scan reaches
// it. (cuts is passed along rather than kept in plan so that its first
// backing array stays on Object's stack.)
func (p *plan) member(cuts []cut, m member) []cut {
	k := p.match(m)
	if k >= 0 {
		p.applied[k] = true
	}
	switch {
	case k >= 0 && p.edits[k].del && p.kept:
		cuts = append(cuts, cut{from: p.insertAt, to: m.valEnd, edit: -1}) // with the comma before it
	case k >= 0 && p.edits[k].del:
		if p.pending < 0 {
			p.pending = m.keyStart
		}
	default:
		if p.pending >= 0 { // deleted members lead: cut them with the comma after them
			cuts = append(cuts, cut{from: p.pending, to: m.keyStart, edit: -1})
			p.pending = -1
		}
		p.kept = true
		if k >= 0 && !p.edits[k].keep {
			cuts = append(cuts, cut{from: m.valStart, to: m.valEnd, edit: k})
		}
	}
	p.insertAt = m.valEnd
	return cuts
}

// memberKey is m's decoded key.
func memberKey(doc []byte, m member) []byte {
	key := doc[m.keyStart+1 : m.keyEnd-1]
	if !m.plain {
		var s string
		// A copy, so that doc does not escape to the heap through Unmarshal.
		if json.Unmarshal(bytes.Clone(doc[m.keyStart:m.keyEnd]), &s) != nil {
			return nil // cannot happen: the scanner checked the string
		}
		key = []byte(s)
	}
	return key
}

// match returns the index of the last edit naming m, or -1.
func (p *plan) match(m member) int {
	key := memberKey(p.doc, m)
	for k := len(p.edits) - 1; k >= 0; k-- {
		if p.edits[k].names(key) {
			return k
		}
	}
	return -1
}

// appends reports whether edits[k] adds a member: a set that matched none
// and that no later edit overrides.
func (p *plan) appends(k int) bool {
	e := &p.edits[k]
	if e.del || p.applied[k] {
		return false
	}
	for l := k + 1; l < len(p.edits); l++ {
		if p.edits[l].names([]byte(e.key)) {
			return false
		}
	}
	return true
}

func (p *plan) with(c cut) []byte {
	if c.edit < 0 {
		return nil
	}
	return p.edits[c.edit].value
}

func (p *plan) render(cuts []cut) []byte {
	size := len(p.doc)
	for _, c := range cuts {
		size += len(p.with(c)) - (c.to - c.from)
	}
	added := 0
	for k := range p.edits {
		if p.appends(k) {
			size += len(",:") + quotedLen(p.edits[k].key) + len(p.edits[k].value)
			added++
		}
	}
	if added > 0 && !p.kept {
		size-- // the first appended member has no comma before it
	}
	out := make([]byte, 0, size)
	at := 0
	for _, c := range cuts {
		out = append(out, p.doc[at:c.from]...)
		out = append(out, p.with(c)...)
		at = c.to
	}
	out = append(out, p.doc[at:p.insertAt]...)
	comma := p.kept
	for k := range p.edits {
		if !p.appends(k) {
			continue
		}
		if comma {
			out = append(out, ',')
		}
		comma = true
		out = AppendQuoted(out, p.edits[k].key)
		out = append(out, ':')
		out = append(out, p.edits[k].value...)
	}
	return append(out, p.doc[p.insertAt:]...)
}
