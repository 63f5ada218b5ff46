// Package apispec embeds api/openapi.yaml, the contract, so the binary serves
// the exact document it was generated from at /openapi.yaml.
package apispec

import _ "embed"

// YAML is the OpenAPI document as written.
//
//go:embed openapi.yaml
var YAML []byte
