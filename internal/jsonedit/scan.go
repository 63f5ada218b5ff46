package jsonedit

import "unicode/utf8"

// maxDepth bounds nesting as encoding/json does (it refuses 10001 levels),
// so a hostile document cannot grow the stack without bound.
const maxDepth = 10000

// member is where one top-level member lies in the document: the key from
// its opening quote to past its closing one, the value as its raw span.
type member struct {
	keyStart, keyEnd, valStart, valEnd int
	// plain: the key's bytes between the quotes are its decoded value (no
	// escapes, valid UTF-8), so they can be compared as they are.
	plain bool
}

// scanner checks JSON text with the grammar of RFC 8259, as json.Valid
// does (including not checking UTF-8, which encoding/json replaces).
type scanner struct {
	doc []byte
	i   int
}

// peek returns the next byte, or 0 at the end (0 is never valid there).
func (s *scanner) peek() byte {
	if s.i < len(s.doc) {
		return s.doc[s.i]
	}
	return 0
}

func (s *scanner) ws() {
	for s.i < len(s.doc) {
		switch s.doc[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value(depth int) bool {
	switch s.peek() {
	case '{':
		return s.object(depth + 1)
	case '[':
		return s.array(depth + 1)
	case '"':
		_, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

func (s *scanner) object(depth int) bool {
	if depth > maxDepth {
		return false
	}
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		if _, ok := s.member(depth); !ok {
			return false
		}
		if more, ok := s.next('}'); !ok || !more {
			return ok
		}
	}
}

// member scans `"key": value` from the key's opening quote.
func (s *scanner) member(depth int) (member, bool) {
	m := member{keyStart: s.i}
	if s.peek() != '"' {
		return m, false
	}
	plain, ok := s.str()
	if !ok {
		return m, false
	}
	m.keyEnd, m.plain = s.i, plain
	s.ws()
	if s.peek() != ':' {
		return m, false
	}
	s.i++
	s.ws()
	m.valStart = s.i
	ok = s.value(depth)
	m.valEnd = s.i
	return m, ok
}

// next scans what follows an element: a comma and the whitespace after it
// (more), or the closing bracket.
func (s *scanner) next(closing byte) (more, ok bool) {
	s.ws()
	switch s.peek() {
	case ',':
		s.i++
		s.ws()
		return true, true
	case closing:
		s.i++
		return false, true
	}
	return false, false
}

func (s *scanner) array(depth int) bool {
	if depth > maxDepth {
		return false
	}
	s.i++
	s.ws()
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		if more, ok := s.next(']'); !ok || !more {
			return ok
		}
	}
}

// str scans a string from its opening quote. plain reports that its bytes
// are its value: no escapes and valid UTF-8. (Most of a request is string
// bytes, so the loop keeps its state in locals.)
func (s *scanner) str() (plain, ok bool) {
	doc, i := s.doc, s.i+1
	start, escaped := i, false
	var high byte // the OR of the bytes: its top bit says some is not ASCII
	for i < len(doc) {
		c := doc[i]
		if plainByte[c] {
			high |= c
			i++
			continue
		}
		s.i = i
		switch c {
		case '"':
			s.i++
			return !escaped && (high < utf8.RuneSelf || utf8.Valid(doc[start:i])), true
		case '\\':
			if !s.escape() {
				return false, false
			}
			escaped, i = true, s.i
		default:
			return false, false
		}
	}
	s.i = i
	return false, false
}

// plainByte[c]: c stands for itself in a JSON string.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escape scans one escape sequence from its backslash.
func (s *scanner) escape() bool {
	s.i++
	switch s.peek() {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i++
		return true
	case 'u':
		if len(s.doc)-s.i < 5 {
			return false
		}
		for _, c := range s.doc[s.i+1 : s.i+5] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		s.i += 5
		return true
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.doc)-s.i < len(lit) || string(s.doc[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *scanner) number() bool {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return false
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits scans one or more decimal digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.doc) && '0' <= s.doc[s.i] && s.doc[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
