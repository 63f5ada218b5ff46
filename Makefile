# Perpetuo: `make run` serves the gateway, `make test` runs every test.
GO        ?= go
TOOL      := $(GO) tool -modfile=tools.mod
DATA_DIR  ?= .data

.PHONY: run test generate check-generated build bench fmt

## run: build and serve on :8080 (managed local PostgreSQL unless DATABASE_URL is set;
## the offline demo provider `mock` when no provider credentials are configured).
run:
	$(GO) build -o bin/perpetuo ./cmd/perpetuo
	PERPETUO_DATA_DIR=$${PERPETUO_DATA_DIR:-$(DATA_DIR)} PERPETUO_DEMO=$${PERPETUO_DEMO:-auto} exec ./bin/perpetuo serve

# Packages that start goroutines or share state run under the race detector.
RACE_PKGS := ./internal/gateway/ ./internal/budget/ ./internal/records/ ./internal/keys/ ./internal/credentials/ \
	./internal/notify/ ./internal/server/ ./internal/app/ ./internal/logging/ ./internal/gctune/

## test: every test, against real PostgreSQL (managed locally unless DATABASE_URL is set)
## and real JavaScript clients (node and npm are installed when missing); the packages
## that share state under -race; go.mod and go.sum must be tidy.
test:
	scripts/ensure-node
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) test -count=1 -race $(RACE_PKGS)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -E '/internal/(gateway|budget|records|keys|credentials|notify|server|app|logging|gctune)$$')

## generate: regenerate gen/api, gen/db, sdk/go and sdk/typescript from api/openapi.yaml,
## sql/ and the configs (generator versions pinned in tools.mod and sdk/typescript/package-lock.json).
generate:
	$(TOOL) oapi-codegen -config oapi-codegen.yaml api/openapi.yaml
	$(TOOL) oapi-codegen -config sdk/go/oapi-codegen.yaml api/openapi.yaml
	rm -f gen/db/*.go
	$(TOOL) sqlc generate
	scripts/ensure-node
	cd sdk/typescript && npm ci --no-audit --no-fund --loglevel=error && npm run --silent generate

## check-generated: fail when regenerating changes or adds any file.
check-generated: generate
	git diff --exit-code -- gen sdk
	@test -z "$$(git status --porcelain -- gen sdk)" || { git status --porcelain -- gen sdk; echo "generated files are stale: run 'make generate' and commit"; exit 1; }

build:
	$(GO) build -o bin/perpetuo ./cmd/perpetuo

## bench: gateway overhead against the mock upstream (prints a report; not a pass/fail test).
bench:
	$(GO) build -o bin/perpetuo ./cmd/perpetuo
	$(GO) run ./bench
