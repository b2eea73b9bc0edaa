# Figures on the single-node test cluster (e2e/k8s/bench_test.go), not run
# by `make test`: pod start to Ready, moat beside runc (median of 10), and
# the node's memory with 50 idle pods of each. Root; see docs/benchmarks.md.
.PHONY: bench-k8s
bench-k8s: ## figures on the test cluster: pod start to Ready (moat vs runc) and the memory of 50 idle pods
	MOAT_TOOLS=$(or $(MOAT_TOOLS),/usr/local/lib/moat-test/bin) MOAT_REQUIRE_E2E=1 MOAT_K8S_BENCH=1 \
		$(GO) test -count=1 -timeout 60m -v -run 'TestBench' ./e2e/k8s/
