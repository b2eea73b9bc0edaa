# The node agent, its chart, manifests and image.
MOAT_TOOLS ?= /usr/local/lib/moat-test/bin
HELM       ?= $(MOAT_TOOLS)/helm

.PHONY: manifests chart-lint

manifests: ## regenerate manifests/moat.yaml from charts/moat
	charts/render-manifests.sh $(HELM) manifests/moat.yaml

chart-lint: ## helm lint charts/moat
	$(HELM) lint charts/moat

IMAGE_TAG ?= moat.dev/moat-node:dev
IMAGE_OUT ?= $(BIN)/moat-node.tar

.PHONY: image

image: ## build the moat-node image tarball ($(IMAGE_OUT)) without a container engine
	@test -d cmd/containerd-shim-moat-v2 || { echo "image: cmd/containerd-shim-moat-v2 is not in this tree yet; the image needs the shim" >&2; exit 1; }
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(BIN)/moat-node ./cmd/moat-node
	$(GO) build -trimpath -o $(BIN)/moat ./cmd/moat
	$(GO) build -trimpath -o $(BIN)/containerd-shim-moat-v2 ./cmd/containerd-shim-moat-v2
	$(GO) run ./cmd/moat-image --agent $(BIN)/moat-node --shim $(BIN)/containerd-shim-moat-v2 \
		--moat $(BIN)/moat --tag $(IMAGE_TAG) --out $(IMAGE_OUT)
