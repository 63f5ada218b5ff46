package server

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"

	"github.com/oapi-codegen/runtime"
)

// The generated handlers decode request bodies through oapi-codegen's
// runtime codec, by default a json.Decoder per request whose buffer starts
// small and is grown and copied as it reads: about 2 KB and several
// allocations per chat request, for a body the middleware already holds.
// bodyCodec reads the body into a pooled buffer and unmarshals it from
// there. encoding/json copies what it keeps (strings, RawMessage), so the
// buffer is free again once Unmarshal returns. Responses are encoded as
// the default codec encodes them.
type bodyCodec struct{ runtime.StdJSONCodec }

// maxPooledBody is the largest buffer kept for reuse: a rare large body
// (a management call near the body limit) is not held on to.
const maxPooledBody = 64 << 10

var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (bodyCodec) UnmarshalRead(r io.Reader, v any) error {
	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodyBuffers.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(r); err != nil {
		return err
	}
	return json.Unmarshal(buf.Bytes(), v)
}

func (bodyCodec) MarshalWrite(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }

// The codec is process-wide and unsynchronised: it is set once, before
// any handler runs.
func init() { runtime.SetJSONCodec(bodyCodec{}) }
