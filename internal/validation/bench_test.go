package validation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkValidateChat is the chat body validator at about 2 KB, 100 KB
// and 1 MB (bench/ reports the same against kin-openapi: go run ./bench -validation).
func BenchmarkValidateChat(b *testing.B) {
	v := chatValidator(b)
	for _, n := range []int{4, 60, 400} {
		var sb strings.Builder
		sb.WriteString(`{"model":"mock/echo","messages":[`)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			c, _ := json.Marshal(strings.Repeat("The quick brown fox jumps over the lazy dog; \"quoted\" text\nand a new line. ", 25))
			fmt.Fprintf(&sb, `{"role":"user","content":%s}`, c)
		}
		sb.WriteString(`]}`)
		body := []byte(sb.String())
		b.Run(fmt.Sprintf("%dKB", len(body)>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := v.Validate(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
