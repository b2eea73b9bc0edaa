# The node agent, its chart, manifests and image.
MOAT_TOOLS ?= /usr/local/lib/moat-test/bin
HELM       ?= $(MOAT_TOOLS)/helm

.PHONY: manifests chart-lint

manifests: ## regenerate manifests/moat.yaml from charts/moat
	charts/render-manifests.sh $(HELM) manifests/moat.yaml

chart-lint: ## helm lint charts/moat
	$(HELM) lint charts/moat
