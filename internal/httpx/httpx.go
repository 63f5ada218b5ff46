// Package httpx holds small helpers for HTTP bodies on the hot path.
package httpx

import "io"

// ReadAll reads r to its end like io.ReadAll, but starts with room for
// hint bytes (a Content-Length; ≤ 0 when unknown), so a body of the size it
// declares is read into one allocation instead of a doubling series.
func ReadAll(r io.Reader, hint int64) ([]byte, error) {
	if hint <= 0 || hint > 64<<20 {
		return io.ReadAll(r)
	}
	// One byte more than declared, so reaching EOF needs no growth.
	b := make([]byte, 0, hint+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // a body longer than declared grows as io.ReadAll's
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
