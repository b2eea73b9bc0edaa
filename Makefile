# moat build and test entry points. `make help` lists them.
GO        ?= go
BIN       ?= $(CURDIR)/bin
GOFLAGS   ?=
export CGO_ENABLED ?= 0

.DEFAULT_GOAL := help
-include mk/*.mk

.PHONY: help build run check test test-unit bench vet fmt clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

build: ## build every command into ./bin
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

run: build ## the main job: check this node's KVM, then run a Go program and busybox in a sandbox
	$(BIN)/moat check && $(BIN)/moat demo

check: build ## report whether this node can run moat
	$(BIN)/moat check

vet: ## go vet and gofmt
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

test: vet ## every test (KVM tests run for real; MOAT_REQUIRE_KVM=1 turns a missing /dev/kvm into a failure)
	$(GO) test -count=1 -timeout 30m ./...

bench: ## benchmarks (figures go to docs/benchmarks.md)
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./kvm/

clean:
	rm -rf $(BIN)
