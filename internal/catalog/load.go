package catalog

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
)

//go:embed default.json
var defaultJSON []byte

// file is the on-disk format (docs/catalog.md).
type file struct {
	Providers []Provider `json:"providers"`
	Models    []Model    `json:"models"`
}

// Default returns the catalog embedded in the binary.
func Default() (*Catalog, error) {
	c, err := Parse(defaultJSON)
	if err != nil {
		return nil, fmt.Errorf("embedded catalog: %w", err)
	}
	return c, nil
}

// Load reads a catalog file, or returns the embedded default when path is "".
func Load(path string) (*Catalog, error) {
	if path == "" {
		return Default()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a catalog document. Unknown fields are errors:
// a typo in a price field must not silently make a model free.
func Parse(b []byte) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return New(f.Providers, f.Models)
}
