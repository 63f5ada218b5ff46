// Package validation checks request bodies against the OpenAPI spec's
// schemas in one pass over the raw bytes.
//
// A schema from the spec (as kin-openapi parsed it) is compiled once at
// start into a tree of nodes; Validate then walks the JSON text and the tree
// together, checking syntax and every schema rule as it goes, without
// building a document in memory. Cost is linear in the body and allocation
// small and independent of it. Compile refuses any schema keyword it does
// not implement, so the spec cannot come to rely on a rule that is silently
// skipped; the package tests compile every request body of the spec and
// compare verdicts with kin-openapi's validator.
//
// Errors name the field (a JSON pointer) and the rule, never a value sent.
package validation

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// kinds is a set of JSON value kinds.
type kinds uint8

const (
	kNull kinds = 1 << iota
	kBool
	kInteger // a number without fraction or exponent
	kNumber  // any other number
	kString
	kArray
	kObject

	kAny = kNull | kBool | kInteger | kNumber | kString | kArray | kObject
)

// node is one compiled schema.
type node struct {
	types kinds // kinds the value may have (type and nullable)
	// typeRule says what types demands, for errors ("a string", ...).
	typeRule string

	enum       []string // allowed strings, when set
	enumRule   string
	minLength  int // in characters; -1: none
	maxLength  int
	pattern    *regexp.Regexp
	patternSrc string
	format     string

	min, max         float64 // NaN: none
	exclMin, exclMax bool
	intRange         *[2]int64 // integers: the range the server's type holds

	minItems, maxItems int // -1: none
	items              *node
	maxProps           int // -1: none

	props      map[string]*prop
	required   []string // in the spec's order, for errors
	additional *node    // nil: any
	noExtra    bool     // additionalProperties: false

	allOf []*node
	oneOf []*node
	anyOf []*node

	nullable bool // null passes every other rule (OpenAPI 3.0 nullable)
	// ownTrivial: apart from allOf, oneOf and anyOf the node checks
	// nothing, so the value is scanned only by its alternatives.
	ownTrivial bool
	trivial    bool // any value passes: only syntax is checked
}

type prop struct {
	n   *node
	bit uint64 // its bit among required properties, 0 if optional
}

// Compile turns a schema into a validator. It fails on keywords this
// package does not implement.
func Compile(s *openapi3.Schema) (*Validator, error) {
	c := compiler{seen: map[*openapi3.Schema]*node{}}
	n, err := c.compile(s, "#")
	if err != nil {
		return nil, err
	}
	return &Validator{root: n}, nil
}

type compiler struct {
	seen map[*openapi3.Schema]*node
}

func (c *compiler) compile(s *openapi3.Schema, at string) (*node, error) {
	if s == nil {
		return newAny(), nil
	}
	if n, ok := c.seen[s]; ok { // shared or recursive schemas compile once
		return n, nil
	}
	n := &node{minLength: -1, maxLength: -1, minItems: -1, maxItems: -1, maxProps: -1, min: math.NaN(), max: math.NaN()}
	c.seen[s] = n
	if err := unsupported(s, at); err != nil {
		return nil, err
	}
	var err error
	if n.types, n.typeRule, err = typesOf(s, at); err != nil {
		return nil, err
	}
	n.nullable = s.Nullable || n.types&kNull != 0 && n.types != kAny
	if len(s.Enum) > 0 {
		for _, v := range s.Enum {
			str, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("%s: enum of non-strings is not supported", at)
			}
			n.enum = append(n.enum, str)
		}
		n.enumRule = "one of " + strings.Join(n.enum, ", ")
		if s.Nullable {
			n.enumRule += ", or null"
		}
	}
	n.minLength = int(s.MinLength)
	if s.MaxLength != nil {
		n.maxLength = int(*s.MaxLength)
	}
	if s.Pattern != "" {
		if n.pattern, err = regexp.Compile(s.Pattern); err != nil {
			return nil, fmt.Errorf("%s: pattern: %w", at, err)
		}
		n.patternSrc = s.Pattern
	}
	switch s.Format {
	case "", "int32", "int64", "date-time", "double", "float", "password":
		n.format = s.Format
	default:
		return nil, fmt.Errorf("%s: format %q is not supported", at, s.Format)
	}
	if n.types&kInteger != 0 && n.types&kNumber == 0 {
		r := [2]int64{math.MinInt64, math.MaxInt64}
		if s.Format == "int32" {
			r = [2]int64{math.MinInt32, math.MaxInt32}
		}
		n.intRange = &r
	}
	if s.Min != nil {
		n.min, n.exclMin = *s.Min, s.ExclusiveMin.IsTrue()
	}
	if s.Max != nil {
		n.max, n.exclMax = *s.Max, s.ExclusiveMax.IsTrue()
	}
	if s.MinItems > 0 {
		n.minItems = int(s.MinItems)
	}
	if s.MaxItems != nil {
		n.maxItems = int(*s.MaxItems)
	}
	if s.MaxProps != nil {
		n.maxProps = int(*s.MaxProps)
	}
	if s.Items != nil {
		if n.items, err = c.compile(s.Items.Value, at+"/items"); err != nil {
			return nil, err
		}
	}
	if len(s.Properties) > 0 || len(s.Required) > 0 {
		if len(s.Required) > 64 {
			return nil, fmt.Errorf("%s: more than 64 required properties", at)
		}
		n.props = map[string]*prop{}
		names := make([]string, 0, len(s.Properties))
		for name := range s.Properties {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			pn, err := c.compile(s.Properties[name].Value, at+"/properties/"+name)
			if err != nil {
				return nil, err
			}
			n.props[name] = &prop{n: pn}
		}
		for i, name := range s.Required {
			p, ok := n.props[name]
			if !ok { // required without a schema: any value
				p = &prop{n: newAny()}
				n.props[name] = p
			}
			p.bit = 1 << i
			n.required = append(n.required, name)
		}
	}
	if ap := s.AdditionalProperties; ap.Has != nil && !*ap.Has {
		n.noExtra = true
	} else if ap.Schema != nil {
		if n.additional, err = c.compile(ap.Schema.Value, at+"/additionalProperties"); err != nil {
			return nil, err
		}
	}
	for _, x := range []struct {
		kw   string
		refs openapi3.SchemaRefs
		to   *[]*node
	}{{"allOf", s.AllOf, &n.allOf}, {"oneOf", s.OneOf, &n.oneOf}, {"anyOf", s.AnyOf, &n.anyOf}} {
		for i, r := range x.refs {
			sub, err := c.compile(r.Value, fmt.Sprintf("%s/%s/%d", at, x.kw, i))
			if err != nil {
				return nil, err
			}
			*x.to = append(*x.to, sub)
		}
	}
	n.ownTrivial = n.types == kAny && n.enum == nil && n.minLength <= 0 && n.maxLength < 0 && n.pattern == nil &&
		(n.format == "" || n.format == "password") && math.IsNaN(n.min) && math.IsNaN(n.max) && n.minItems < 0 && n.maxItems < 0 &&
		n.items == nil && n.props == nil && n.additional == nil && !n.noExtra && n.maxProps < 0
	n.trivial = n.types == kAny && n.enum == nil && n.minLength <= 0 && n.maxLength < 0 && n.pattern == nil &&
		(n.format == "" || n.format == "password") && math.IsNaN(n.min) && math.IsNaN(n.max) && n.minItems < 0 && n.maxItems < 0 &&
		!n.nullable && n.items == nil && n.props == nil && n.additional == nil && !n.noExtra && n.maxProps < 0 &&
		n.allOf == nil && n.oneOf == nil && n.anyOf == nil
	return n, nil
}

// typeKinds are the kinds each JSON Schema type allows, and how errors
// name it.
var typeKinds = map[string]struct {
	k    kinds
	word string
}{
	openapi3.TypeBoolean: {kBool, "true or false"},
	openapi3.TypeInteger: {kInteger, "an integer"},
	openapi3.TypeNumber:  {kInteger | kNumber, "a number"},
	openapi3.TypeString:  {kString, "a string"},
	openapi3.TypeArray:   {kArray, "an array"},
	openapi3.TypeObject:  {kObject, "an object"},
}

// typesOf is the set of kinds a schema's type (and nullable) allows, with
// the rule's wording.
func typesOf(s *openapi3.Schema, at string) (kinds, string, error) {
	if s.Type == nil || len(*s.Type) == 0 {
		return kAny, "", nil
	}
	var k kinds
	var words []string
	for _, t := range *s.Type {
		if t == openapi3.TypeNull {
			k |= kNull
			continue
		}
		tk, ok := typeKinds[t]
		if !ok {
			return 0, "", fmt.Errorf("%s: type %q is not supported", at, t)
		}
		k |= tk.k
		words = append(words, tk.word)
	}
	if s.Nullable || k&kNull != 0 {
		k |= kNull
		words = append(words, "null")
	}
	rule := strings.Join(words, " or ")
	return k, rule, nil
}

// unsupported names the first keyword of s that Validate would not check.
func unsupported(s *openapi3.Schema, at string) error {
	var kw []string
	if s.Not != nil {
		kw = append(kw, "not")
	}
	if s.UniqueItems {
		kw = append(kw, "uniqueItems")
	}
	if s.MultipleOf != nil {
		kw = append(kw, "multipleOf")
	}
	if s.MinProps != 0 {
		kw = append(kw, "minProperties")
	}
	if s.Discriminator != nil {
		kw = append(kw, "discriminator")
	}
	if s.ReadOnly {
		kw = append(kw, "readOnly")
	}
	if len(s.PatternProperties) > 0 {
		kw = append(kw, "patternProperties")
	}
	if s.Const != nil {
		kw = append(kw, "const")
	}
	if s.ExclusiveMin.Value != nil || s.ExclusiveMax.Value != nil {
		kw = append(kw, "numeric exclusiveMinimum/exclusiveMaximum")
	}
	if len(s.PrefixItems) > 0 || s.Contains != nil || len(s.DependentSchemas) > 0 || s.PropertyNames != nil ||
		s.If != nil || len(s.DependentRequired) > 0 || s.Always != nil || s.UnevaluatedItems.Schema != nil ||
		s.UnevaluatedProperties.Schema != nil || s.UnevaluatedItems.Has != nil || s.UnevaluatedProperties.Has != nil {
		kw = append(kw, "OpenAPI 3.1 keywords")
	}
	if len(kw) > 0 {
		slices.Sort(kw)
		return fmt.Errorf("%s: %s not supported by internal/validation", at, strings.Join(kw, ", "))
	}
	return nil
}
