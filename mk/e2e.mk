# End-to-end tests against a private containerd (e2e/, docs/e2e.md).
E2E_TOOLS ?= $(or $(MOAT_TOOLS),/usr/local/lib/moat-test/bin)

.PHONY: e2e e2e-tools

e2e-tools: ## install the e2e tools (containerd, runc, CNI plugins, crictl, busybox-static); needs root
	MOAT_TOOLS=$(E2E_TOOLS) bash .ci/install.d/20-containerd.sh
	MOAT_TOOLS=$(E2E_TOOLS) bash .ci/install.d/30-e2e-tools.sh

e2e: ## end-to-end tests against a private containerd, for every handler (root; missing tools fail)
	MOAT_TOOLS=$(E2E_TOOLS) MOAT_REQUIRE_E2E=1 $(GO) test -count=1 -timeout 15m -v ./cri/ ./e2e/...
