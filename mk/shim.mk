# The containerd shim and the sentry's control API.
.PHONY: shim test-shim e2e-moat-shim

shim: ## build containerd-shim-moat-v2 into ./bin
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS) -o $(BIN)/containerd-shim-moat-v2 ./cmd/containerd-shim-moat-v2

test-shim: ## the shim's and the control API's tests (control needs /dev/kvm and busybox-static)
	$(GO) test -count=1 ./shim/... ./sentry/control/... ./sentry/sandbox/...

e2e-moat-shim: ## the moat scenarios only (TestMoat*: root, /dev/kvm, make e2e-tools)
	$(GO) test -count=1 -v -run 'TestMoat' ./e2e/
