package validation

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/perpetuo/perpetuo/internal/safetext"
)

// MaxDepth bounds how deeply a body's arrays and objects may nest.
const MaxDepth = 256

// Validator checks JSON documents against one compiled schema. It is safe
// for concurrent use.
type Validator struct{ root *node }

// Error is why a document was refused: a JSON syntax error (Offset is
// where) or a schema rule (Field is the value's JSON pointer, "" for the
// document itself). Reason names the rule, never a value.
type Error struct {
	Field     string
	Reason    string
	Syntax    bool
	Truncated bool // a syntax error: the document ends too early
	Offset    int  // of a syntax error, counted from 1

	path []string // pointer segments, innermost first, while unwinding
}

func (e *Error) Error() string {
	if e.Syntax {
		return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Reason)
	}
	if e.Field == "" {
		return e.Reason + " for the body as a whole"
	}
	return e.Reason + " at " + e.Field
}

// Validate checks doc. It returns nil or an *Error.
func (v *Validator) Validate(doc []byte) error {
	p := parser{b: doc}
	p.ws()
	if p.i == len(doc) {
		return &Error{Syntax: true, Truncated: true, Reason: "the body is empty", Offset: 0}
	}
	if err := p.value(v.root, 0); err != nil {
		return err.done()
	}
	p.ws()
	if p.i != len(doc) {
		return p.syntax("unexpected data after the JSON value")
	}
	return nil
}

func (e *Error) done() *Error {
	if len(e.path) > 0 {
		slices.Reverse(e.path)
		e.Field = "/" + strings.Join(e.path, "/")
		e.path = nil
	}
	return e
}

// in records that the error happened inside seg (a property or index).
func (e *Error) in(seg string) *Error {
	if !e.Syntax {
		e.path = append(e.path, seg)
	}
	return e
}

type parser struct {
	b       []byte
	i       int
	scratch []byte // decoded strings with escapes
}

// syntax is a syntax error at p.i; at the end of the document, whatever
// was expected, the document ends too early.
func (p *parser) syntax(reason string) *Error {
	if p.i >= len(p.b) {
		return &Error{Syntax: true, Truncated: true, Reason: "it ends too early", Offset: len(p.b)}
	}
	return &Error{Syntax: true, Reason: reason, Offset: p.i + 1}
}

func rule(format string, args ...any) *Error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// kindAt is the kind of the value starting at p.i, by its first byte (a
// number's integer-ness is found when it is scanned).
func (p *parser) kindAt() (kinds, bool) {
	if p.i >= len(p.b) {
		return 0, false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return kObject, true
	case c == '[':
		return kArray, true
	case c == '"':
		return kString, true
	case c == 't' || c == 'f':
		return kBool, true
	case c == 'n':
		return kNull, true
	case c == '-' || (c >= '0' && c <= '9'):
		return kInteger | kNumber, true
	}
	return 0, false
}

// value checks the value at p.i against n and leaves p.i after it.
func (p *parser) value(n *node, depth int) *Error {
	p.ws()
	if n.trivial {
		return p.skip(depth)
	}
	start := p.i
	k, ok := p.kindAt()
	if !ok {
		return p.syntax("a value was expected")
	}
	if k == kNull && n.nullable { // nullable: null passes every other rule
		return p.literal("null")
	}
	end := -1 // where the value ends, once a pass has scanned it
	if !n.ownTrivial || len(n.allOf)+len(n.oneOf)+len(n.anyOf) == 0 {
		if err := p.own(n, k, depth); err != nil {
			return err
		}
		end = p.i
	}
	for _, sub := range n.allOf {
		p.i = start
		if err := p.value(sub, depth); err != nil {
			return err
		}
		end = p.i
	}
	if len(n.oneOf) > 0 {
		if err := p.oneOf(n.oneOf, start, depth, true, &end); err != nil {
			return err
		}
	}
	if len(n.anyOf) > 0 {
		if err := p.oneOf(n.anyOf, start, depth, false, &end); err != nil {
			return err
		}
	}
	p.i = end
	return nil
}

// oneOf checks the value at start against alternatives: exactly one must
// pass (or at least one, for anyOf).
// A passing alternative sets *end where the value ends.
func (p *parser) oneOf(alts []*node, start, depth int, exactlyOne bool, end *int) *Error {
	p.i = start
	k, _ := p.kindAt()
	matched, candidates := 0, 0
	var lastErr *Error
	var words []string
	for _, sub := range alts {
		if sub.typeRule != "" {
			words = append(words, sub.typeRule)
		}
		if sub.types&k == 0 { // cannot match: no need to scan
			continue
		}
		candidates++
		p.i = start
		err := p.value(sub, depth)
		if err != nil {
			if err.Syntax {
				return err
			}
			lastErr = err
			continue
		}
		matched++
		*end = p.i
		if !exactlyOne {
			return nil
		}
	}
	switch {
	case matched == 1 || (matched > 1 && !exactlyOne):
		return nil
	case matched > 1:
		return rule("value matches more than one of the allowed shapes")
	case candidates == 1: // the only shape it could be: say what is wrong inside it
		return lastErr
	case candidates == 0 && len(words) == len(alts):
		return rule("value must be %s", strings.Join(words, " or "))
	}
	return rule("value matches none of the allowed shapes")
}

// own checks the keywords of n itself on a value of kind k.
func (p *parser) own(n *node, k kinds, depth int) *Error {
	switch k {
	case kObject:
		if n.types&kObject == 0 {
			return rule("value must be %s", n.typeRule)
		}
		return p.object(n, depth)
	case kArray:
		if n.types&kArray == 0 {
			return rule("value must be %s", n.typeRule)
		}
		return p.array(n, depth)
	case kString:
		s, esc, err := p.str()
		if err != nil {
			return err
		}
		if n.types&kString == 0 {
			return rule("value must be %s", n.typeRule)
		}
		return p.checkString(n, s, esc)
	case kBool:
		lit := "false"
		if p.b[p.i] == 't' {
			lit = "true"
		}
		if err := p.literal(lit); err != nil {
			return err
		}
		if n.types&kBool == 0 {
			return rule("value must be %s", n.typeRule)
		}
		return nil
	case kNull:
		if err := p.literal("null"); err != nil {
			return err
		}
		if n.types&kNull == 0 {
			return rule("value must be %s", n.typeRule)
		}
		return nil
	}
	num, isInt, err := p.number()
	if err != nil {
		return err
	}
	return checkNumber(n, num, isInt)
}

func (p *parser) literal(lit string) *Error {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return p.syntax("a value was expected")
	}
	p.i += len(lit)
	return nil
}

func (p *parser) object(n *node, depth int) *Error {
	if depth >= MaxDepth {
		return p.syntax(fmt.Sprintf("the body nests deeper than %d levels", MaxDepth))
	}
	p.i++ // {
	var seen uint64
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return n.missing(seen)
	}
	for members := 0; ; members++ {
		if n.maxProps >= 0 && members == n.maxProps { // refused before reading the rest
			return rule("object must have at most %d properties", n.maxProps)
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return p.syntax("a property name in double quotes was expected")
		}
		key, esc, err := p.str()
		if err != nil {
			return err
		}
		if esc {
			key = p.unescape(key)
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return p.syntax("':' was expected after a property name")
		}
		p.i++
		child := n.additional
		if pr, ok := n.props[string(key)]; ok {
			child, seen = pr.n, seen|pr.bit
		} else if n.noExtra {
			return rule("property '%s' is not allowed", safetext.Clean(string(key), 64))
		}
		if child == nil {
			err = p.skip(depth + 1)
		} else {
			err = p.value(child, depth+1)
		}
		if err != nil {
			return err.in(pointerSeg(key))
		}
		if done, err := p.separator('}'); err != nil || done {
			if err != nil {
				return err
			}
			return n.missing(seen)
		}
	}
}

// separator reads the ',' before another member (done false) or the
// closing byte (done true).
func (p *parser) separator(closing byte) (done bool, err *Error) {
	p.ws()
	if p.i >= len(p.b) {
		return false, p.syntax("")
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		return false, nil
	case closing:
		p.i++
		return true, nil
	}
	return false, p.syntax(fmt.Sprintf("',' or '%c' was expected", closing))
}

// missing reports the first required property not seen.
func (n *node) missing(seen uint64) *Error {
	for _, name := range n.required {
		if seen&n.props[name].bit == 0 {
			return (&Error{Reason: "value is required"}).in(pointerSeg([]byte(name)))
		}
	}
	return nil
}

func pointerSeg(key []byte) string {
	s := safetext.Clean(string(key), 64)
	if strings.ContainsAny(s, "~/") {
		s = strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
	}
	return s
}

func (p *parser) array(n *node, depth int) *Error {
	if depth >= MaxDepth {
		return p.syntax(fmt.Sprintf("the body nests deeper than %d levels", MaxDepth))
	}
	p.i++ // [
	count := 0
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return n.countOK(count)
	}
	for {
		if n.maxItems >= 0 && count == n.maxItems { // refused before reading the rest
			return rule("array must have at most %d items", n.maxItems)
		}
		var err *Error
		if n.items == nil {
			err = p.skip(depth + 1)
		} else {
			err = p.value(n.items, depth+1)
		}
		if err != nil {
			return err.in(strconv.Itoa(count))
		}
		count++
		if done, err := p.separator(']'); err != nil || done {
			if err != nil {
				return err
			}
			return n.countOK(count)
		}
	}
}

func (n *node) countOK(count int) *Error {
	if n.minItems > 0 && count < n.minItems {
		if n.minItems == 1 {
			return rule("array must not be empty")
		}
		return rule("array must have at least %d items", n.minItems)
	}
	return nil
}

// str scans a string at p.i and returns its raw content (between the
// quotes) and whether it has escapes.
func (p *parser) str() ([]byte, bool, *Error) {
	p.i++ // "
	start := p.i
	esc := false
	for p.i < len(p.b) {
		// Skip 8 plain bytes at a time: none a quote, backslash or control.
		for p.i+8 <= len(p.b) && plain8(binary.LittleEndian.Uint64(p.b[p.i:])) {
			p.i += 8
		}
		if p.i >= len(p.b) {
			break
		}
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, esc, nil
		case c == '\\':
			esc = true
			if p.i+1 >= len(p.b) {
				p.i++
				return nil, false, p.syntax("")
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) || !isHex4(p.b[p.i+2:p.i+6]) {
					return nil, false, p.syntax("a string has an invalid \\u escape")
				}
				p.i += 6
			default:
				return nil, false, p.syntax("a string has an invalid escape")
			}
		case c < 0x20:
			return nil, false, p.syntax("a string has an unescaped control character")
		default:
			p.i++
		}
	}
	return nil, false, p.syntax("")
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plain8 reports whether none of the 8 bytes in x is '"', '\\' or below
// 0x20 (bytes of 0x80 and above are plain: UTF-8 passes through).
func plain8(x uint64) bool {
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	// A byte b is zero (or < 0x20) when (b - n) borrows into its high bit
	// while b's own high bit is clear.
	special := ((quote - ones) &^ quote) | ((backslash - ones) &^ backslash) | ((x - ones*0x20) &^ x)
	return special&highs == 0
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// unescape decodes a raw string with escapes into p.scratch, as
// encoding/json does (lone surrogates become U+FFFD).
func (p *parser) unescape(raw []byte) []byte {
	out := p.scratch[:0]
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := rune(hex4(raw[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if r2 := utf16.DecodeRune(r, rune(hex4(raw[i+2:i+6]))); r2 != utf8.RuneError {
						r = r2
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // " \ /
			out = append(out, raw[i+1])
		}
		i += 2
	}
	p.scratch = out
	return out
}

func hex4(b []byte) uint16 {
	var v uint16
	for _, c := range b {
		v <<= 4
		switch {
		case c <= '9':
			v |= uint16(c - '0')
		case c >= 'a':
			v |= uint16(c - 'a' + 10)
		default:
			v |= uint16(c - 'A' + 10)
		}
	}
	return v
}

func (p *parser) checkString(n *node, raw []byte, esc bool) *Error {
	if n.enum == nil && n.minLength <= 0 && n.maxLength < 0 && n.pattern == nil &&
		n.format != "date-time" {
		return nil
	}
	s := raw
	if esc {
		s = p.unescape(raw)
	}
	if n.enum != nil && !slices.Contains(n.enum, string(s)) {
		return rule("value must be %s", n.enumRule)
	}
	if n.minLength > 0 || n.maxLength >= 0 {
		l := utf8.RuneCount(s)
		if n.minLength > 0 && l < n.minLength {
			if n.minLength == 1 {
				return rule("value must not be empty")
			}
			return rule("value must be at least %d characters long", n.minLength)
		}
		if n.maxLength >= 0 && l > n.maxLength {
			return rule("value must be at most %d characters long", n.maxLength)
		}
	}
	if n.pattern != nil && !n.pattern.Match(s) {
		return rule("value must match %s", n.patternSrc)
	}
	if n.format == "date-time" {
		if _, err := time.Parse(time.RFC3339Nano, string(s)); err != nil {
			return rule("value must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z")
		}
	}
	return nil
}

// number scans a number and returns its text and whether it is written
// as an integer (no fraction, no exponent).
func (p *parser) number() ([]byte, bool, *Error) {
	start := p.i
	isInt := true
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return nil, false, p.syntax("a number has no digits")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		isInt = false
		p.i++
		if p.digits() == 0 {
			return nil, false, p.syntax("a number has no digits after '.'")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		isInt = false
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return nil, false, p.syntax("a number has no digits in its exponent")
		}
	}
	return p.b[start:p.i], isInt, nil
}

func (p *parser) digits() int {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

func checkNumber(n *node, num []byte, isInt bool) *Error {
	if isInt && n.types&kInteger == 0 || !isInt && n.types&kNumber == 0 {
		if n.types&kInteger != 0 && n.intRange != nil {
			return rule("value must be an integer")
		}
		return rule("value must be %s", n.typeRule)
	}
	if n.intRange == nil && math.IsNaN(n.min) && math.IsNaN(n.max) {
		return nil
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil && math.IsInf(f, 0) {
		return rule("value must be a finite number")
	}
	if !math.IsNaN(n.min) && (f < n.min || n.exclMin && f == n.min) {
		if n.exclMin {
			return rule("value must be greater than %s", fmtNum(n.min))
		}
		return rule("value must be at least %s", fmtNum(n.min))
	}
	if !math.IsNaN(n.max) && (f > n.max || n.exclMax && f == n.max) {
		if n.exclMax {
			return rule("value must be less than %s", fmtNum(n.max))
		}
		return rule("value must be at most %s", fmtNum(n.max))
	}
	if r := n.intRange; r != nil {
		if v, err := strconv.ParseInt(string(num), 10, 64); err != nil || v < r[0] || v > r[1] {
			return rule("value must be an integer between %d and %d", r[0], r[1])
		}
	}
	return nil
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// skip scans any value, checking only its syntax.
func (p *parser) skip(depth int) *Error {
	p.ws()
	k, ok := p.kindAt()
	if !ok {
		return p.syntax("a value was expected")
	}
	switch k {
	case kObject, kArray:
		return p.own(anyNode, k, depth)
	case kString:
		_, _, err := p.str()
		return err
	case kBool:
		if p.b[p.i] == 't' {
			return p.literal("true")
		}
		return p.literal("false")
	case kNull:
		return p.literal("null")
	}
	_, _, err := p.number()
	return err
}

// anyNode accepts every value.
var anyNode = newAny()

func newAny() *node {
	return &node{types: kAny, minLength: -1, maxLength: -1, minItems: -1, maxItems: -1, maxProps: -1, min: math.NaN(), max: math.NaN(), trivial: true}
}
