# bench: moat's figures beside native (docs/benchmarks.md).
BENCHTIME ?= 1s

.PHONY: bench-sandbox compare

bench: bench-sandbox

bench-sandbox: ## workloads natively and in a sandbox: start, getppid, fork+exec, pipe, mmap, idle memory
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./bench/

compare: build ## the same workloads natively, under runc, runsc and moat run, in one table (needs root)
	MOAT=$(BIN)/moat bench/compare.sh

.PHONY: bench-pods
bench-pods: ## pods through CRI on a private containerd: start, exec, idle memory, 20 at once; runc beside moat (root)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/containerd-shim-moat-v2 ./cmd/containerd-shim-moat-v2
	MOAT_TOOLS=$(or $(MOAT_TOOLS),/usr/local/lib/moat-test/bin) $(GO) run ./bench/pods -shim $(BIN)/containerd-shim-moat-v2 $(PODS_FLAGS)
