# End-to-end tests against a private containerd (e2e/, docs/e2e.md).
E2E_TOOLS ?= $(or $(MOAT_TOOLS),/usr/local/lib/moat-test/bin)

.PHONY: e2e e2e-tools e2e-moat

e2e-tools: ## install the e2e tools (containerd, runc, CNI, crictl, busybox, critest, registry, Debian rootfs); root
	MOAT_TOOLS=$(E2E_TOOLS) bash .ci/install.d/20-containerd.sh
	MOAT_TOOLS=$(E2E_TOOLS) bash .ci/install.d/30-e2e-tools.sh
	MOAT_TOOLS=$(E2E_TOOLS) bash .ci/install.d/31-critest.sh
	bash .ci/install.d/30-debian-rootfs.sh

e2e: ## end-to-end tests against a private containerd, for every handler (root; missing tools fail)
	MOAT_TOOLS=$(E2E_TOOLS) MOAT_REQUIRE_E2E=1 $(GO) test -count=1 -timeout 15m -v ./cri/ ./e2e/...

e2e-moat: ## e2e tests for runc and moat: builds cmd/containerd-shim-moat-v2 into ./bin (once it exists)
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/containerd-shim-moat-v2 ./cmd/containerd-shim-moat-v2
	MOAT_TOOLS=$(E2E_TOOLS) MOAT_REQUIRE_E2E=1 MOAT_E2E_SHIM=$(BIN)/containerd-shim-moat-v2 \
		$(GO) test -count=1 -timeout 20m -v ./e2e/...
