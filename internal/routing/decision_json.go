package routing

import (
	"math"
	"strconv"

	"github.com/perpetuo/perpetuo/internal/jsonedit"
)

// AppendJSON appends d as json.Marshal encodes it, byte for byte, without
// reflection: every generation record carries its decision, and
// encoding/json's reflection was about 2% of the gateway's CPU per request.
// It reports false, as json.Marshal fails, when a score is not finite.
func (d Decision) AppendJSON(dst []byte) ([]byte, bool) {
	dst = append(dst, `{"strategy":`...)
	dst = jsonedit.AppendQuoted(dst, d.Strategy)
	dst = append(dst, `,"key":`...)
	dst = jsonedit.AppendQuoted(dst, d.Key)
	if d.Sort != "" {
		dst = append(dst, `,"sort":`...)
		dst = jsonedit.AppendQuoted(dst, d.Sort)
	}
	if d.Partition != "" {
		dst = append(dst, `,"partition":`...)
		dst = jsonedit.AppendQuoted(dst, d.Partition)
	}
	if len(d.Order) > 0 {
		dst = appendStrings(append(dst, `,"order":`...), d.Order)
	}
	dst = strconv.AppendBool(append(dst, `,"allow_fallbacks":`...), d.Fallbacks)
	dst = strconv.AppendInt(append(dst, `,"prompt_tokens":`...), int64(d.PromptTokens), 10)
	if d.MaxOutput != 0 {
		dst = strconv.AppendInt(append(dst, `,"max_output":`...), int64(d.MaxOutput), 10)
	}
	if d.Session {
		dst = append(dst, `,"session":true`...)
	}
	if len(d.ZDRRequiredBy) > 0 {
		dst = appendStrings(append(dst, `,"zdr_required_by":`...), d.ZDRRequiredBy)
	}
	dst = append(dst, `,"candidates":`...)
	if d.Candidates == nil {
		return append(dst, "null}"...), true
	}
	dst = append(dst, '[')
	for i, c := range d.Candidates {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		if dst, ok = c.appendJSON(dst); !ok {
			return nil, false
		}
	}
	return append(dst, "]}"...), true
}

func (c Scored) appendJSON(dst []byte) ([]byte, bool) {
	dst = append(dst, `{"model":`...)
	dst = jsonedit.AppendQuoted(dst, c.Model)
	dst = append(dst, `,"provider":`...)
	dst = jsonedit.AppendQuoted(dst, c.Provider)
	if c.ExcludedBy != "" {
		dst = append(dst, `,"excluded_by":`...)
		dst = jsonedit.AppendQuoted(dst, c.ExcludedBy)
	}
	if len(c.Dropped) > 0 {
		dst = appendStrings(append(dst, `,"dropped_parameters":`...), c.Dropped)
	}
	dst = append(dst, `,"score":`...)
	var ok bool
	if dst, ok = appendFloat(dst, c.Score); !ok {
		return nil, false
	}
	if c.Rank != 0 {
		dst = strconv.AppendInt(append(dst, `,"rank":`...), int64(c.Rank), 10)
	}
	return append(dst, '}'), true
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonedit.AppendQuoted(dst, s)
	}
	return append(dst, ']')
}

// appendFloat formats f as encoding/json does a float64: the shortest
// decimal, with an exponent (and no leading zero in it) only for
// magnitudes below 1e-6 or from 1e21 up.
func appendFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}
