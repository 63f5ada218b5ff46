package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/perpetuo/perpetuo/gen/api"
	"github.com/perpetuo/perpetuo/internal/jsonedit"
	"github.com/perpetuo/perpetuo/internal/validation"
)

// validationSizes are the chat bodies measured: a short chat, a long
// conversation (about the 113 KB, 60-message body of issue 7) and 1 MB.
var validationSizes = []struct {
	name           string
	messages, size int // message count and characters per message
}{
	{"2 KB, 4 messages", 4, 420},
	{"100 KB, 60 messages", 60, 1700},
	{"1 MB, 400 messages", 400, 2600},
}

// chatBodyOf is a chat request with n messages of about size characters
// (prose with some escapes), alternating user and assistant.
func chatBodyOf(n, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"model":"mock/echo","max_tokens":256,"temperature":0.7,"user":"u-42","messages":[`)
	words := "The quick brown fox jumps over the lazy dog; \"quoted\" text\nand a new line. "
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		content, _ := json.Marshal(strings.Repeat(words, size/len(words)+1)[:size])
		fmt.Fprintf(&b, `{"role":%q,"content":%s}`, role, content)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// validationResult is one body size measured three ways.
type validationResult struct {
	name              string
	bytes             int
	kin, ours, decode testing.BenchmarkResult
	decodeLite        testing.BenchmarkResult // the body without messages, as the chat route decodes it
}

// measureValidation times validating chat bodies: kin-openapi's request
// validator (what the server ran before), the compiled validator the
// server runs now, and the generated type's decode that follows either.
func measureValidation() ([]validationResult, error) {
	spec, err := api.GetSwagger()
	if err != nil {
		return nil, err
	}
	spec.Servers = nil
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, err
	}
	v, err := validation.Compile(spec.Components.Schemas["ChatCompletionRequest"].Value)
	if err != nil {
		return nil, err
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	var out []validationResult
	for _, sz := range validationSizes {
		body := chatBodyOf(sz.messages, sz.size)
		if err := v.Validate(body); err != nil {
			return nil, fmt.Errorf("%s: %w", sz.name, err)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://gw/v1/chat/completions", nil)
		req.Header.Set("Content-Type", "application/json")
		route, params, err := router.FindRoute(req)
		if err != nil {
			return nil, err
		}
		r := validationResult{name: sz.name, bytes: len(body)}
		var failed error
		r.kin = testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req.Body = io.NopCloser(bytes.NewReader(body))
				in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
				if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
					failed = err
				}
			}
		})
		r.ours = testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Validate(body); err != nil {
					failed = err
				}
			}
		})
		r.decode = testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var c api.ChatCompletionRequest
				if err := json.Unmarshal(body, &c); err != nil {
					failed = err
				}
			}
		})
		r.decodeLite = testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				lite, err := jsonedit.Object(body, jsonedit.Delete("messages"))
				var c api.ChatCompletionRequest
				if err == nil {
					err = json.Unmarshal(lite, &c)
				}
				if err != nil {
					failed = err
				}
			}
		})
		if failed != nil {
			return nil, fmt.Errorf("%s: %w", sz.name, failed)
		}
		out = append(out, r)
	}
	return out, nil
}

func printValidation(w io.Writer, rs []validationResult) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	title := "Request validation: kin-openapi (before) vs the compiled validator (now)"
	p("\n%s\n%s", title, strings.Repeat("=", len(title)))
	p("per chat body; alloc/body = bytes allocated per byte of body; the typed decode is the generated")
	p("strict handler's json.Unmarshal after validation: of the whole body before, of the body without")
	p("its messages now (the chat route relays the raw body and reads only its routing fields)")
	const row = "%-22s %9s  %-22s %12s %10s %12s %10s\n"
	fmt.Fprintf(w, row, "body", "bytes", "step", "time/op", "MB/s", "alloc/op", "alloc/body")
	p("%s", strings.Repeat("-", 104))
	for _, r := range rs {
		for _, s := range []struct {
			name string
			res  testing.BenchmarkResult
		}{{"kin-openapi (before)", r.kin}, {"compiled (now)", r.ours}, {"typed decode (before)", r.decode},
			{"typed, no messages", r.decodeLite}} {
			ns := float64(s.res.NsPerOp())
			fmt.Fprintf(w, row, r.name, fmt.Sprint(r.bytes), s.name, time.Duration(ns).Round(time.Microsecond/10).String(),
				fmt.Sprintf("%.0f", float64(r.bytes)/ns*1e3), fmt.Sprintf("%d B", s.res.AllocedBytesPerOp()),
				fmt.Sprintf("%.2f", float64(s.res.AllocedBytesPerOp())/float64(r.bytes)))
		}
	}
}

// refusalResult is the cost of refusing one large body that names a model
// the catalog does not have.
type refusalResult struct {
	bytes, requests int
	status          int
	latency, cpu    time.Duration // per request
}

// measureUnknownModelRefusal sends, through the running gateway, an 8 MB
// body of 240,000 tiny messages for a model that does not exist: the cheap
// model check answers before the body is validated.
func measureUnknownModelRefusal(ctx context.Context, gw target) (refusalResult, error) {
	var b bytes.Buffer
	b.WriteString(`{"model":"nobody/nothing","messages":[`)
	for i := range 240000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"role":"user","content":"hi"}`)
	}
	b.WriteString(`]}`)
	body := b.Bytes()
	res := refusalResult{bytes: len(body), requests: 10}
	client := &http.Client{Timeout: time.Minute}
	cpu0, t0 := gw.serving.cpu(), time.Now()
	for range res.requests {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, gw.url, bytes.NewReader(body))
		if err != nil {
			return res, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+gw.token)
		resp, err := client.Do(req)
		if err != nil {
			return res, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res.status = resp.StatusCode
	}
	res.latency = time.Since(t0) / time.Duration(res.requests)
	res.cpu = (gw.serving.cpu() - cpu0) / time.Duration(res.requests)
	return res, nil
}

func (r refusalResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nunknown model, %d-byte body of 240,000 messages, through the gateway: HTTP %d, %s per request, %s gateway CPU per request (%d requests)\n",
		r.bytes, r.status, r.latency.Round(time.Microsecond*10), r.cpu.Round(time.Microsecond*10), r.requests)
}
