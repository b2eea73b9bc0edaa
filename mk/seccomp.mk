# seccomp: guest filters, pod profiles, and the sentry's own host filter.
.PHONY: fuzz-seccomp seccomp-audit

fuzz-seccomp: ## fuzz the seccomp filter checker and interpreter (FUZZTIME, default 60s)
	$(GO) test -run '^$$' -fuzz '^FuzzCheckRun$$' -fuzztime $(FUZZTIME) ./sentry/seccomp

seccomp-audit: ## run the e2e scenarios (not critest) with the sentry's host filter logging instead of killing, then list the host calls outside its allowlist (root)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/containerd-shim-moat-v2 ./cmd/containerd-shim-moat-v2
	@start=$$(cut -d' ' -f1 /proc/uptime); \
	MOAT_SENTRY_SECCOMP=log MOAT_TOOLS=$(E2E_TOOLS) MOAT_REQUIRE_E2E=1 MOAT_E2E_SHIM=$(BIN)/containerd-shim-moat-v2 \
		$(GO) test -count=1 -timeout 20m -skip TestCritest ./e2e/; rc=$$?; \
	calls=$$(dmesg | awk -v s="$$start" -F'[][]' '$$2+0 >= s' | grep 'type=1326' | grep 'containerd-shim-moat-v2' | \
		grep -o 'syscall=[0-9]*' | sort | uniq -c); \
	if [ -n "$$calls" ]; then echo "host calls outside the sentry's allowlist (sentry/control/seccomp_linux_unsafe.go):"; echo "$$calls"; exit 1; fi; \
	echo "no host call outside the sentry's allowlist"; exit $$rc
