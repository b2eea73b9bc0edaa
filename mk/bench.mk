# bench: moat's figures beside native (docs/benchmarks.md).
BENCHTIME ?= 1s

.PHONY: bench-sandbox compare

bench: bench-sandbox

bench-sandbox: ## workloads natively and in a sandbox: start, getppid, fork+exec, pipe, mmap, idle memory
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./bench/

compare: build ## the same workloads natively, under runc, runsc and moat run, in one table (needs root)
	MOAT=$(BIN)/moat bench/compare.sh
