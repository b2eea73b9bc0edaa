# The single-node Kubernetes cluster of the tests (e2e/cluster, e2e/kube,
# e2e/k8s). Root; the tools come from .ci/install.d.
CLUSTER_TOOLS ?= $(or $(MOAT_TOOLS),/usr/local/lib/moat-test/bin)

.PHONY: cluster-tools cluster-up cluster-down cluster-status test-k8s

cluster-tools: e2e-tools ## build Kubernetes v1.37.2, etcd and helm into $(CLUSTER_TOOLS) (cached; ~20 min cold)
	MOAT_TOOLS=$(CLUSTER_TOOLS) bash .ci/install.d/30-helm.sh
	MOAT_TOOLS=$(CLUSTER_TOOLS) bash .ci/install.d/40-kubernetes.sh

cluster-up: ## start the test cluster in the background (then see e2e/cluster/cluster env)
	MOAT_TOOLS=$(CLUSTER_TOOLS) e2e/cluster/up.sh

cluster-down: ## stop the test cluster and check that nothing is left
	e2e/cluster/down.sh

cluster-status: ## is the test cluster up, and its node
	$(GO) run ./e2e/cluster status

test-k8s: ## the Kubernetes scenarios (helm install, moat and runc pods, helm uninstall); uses a running cluster-up cluster if any
	MOAT_TOOLS=$(CLUSTER_TOOLS) MOAT_REQUIRE_E2E=1 $(GO) test -count=1 -timeout 20m -v ./e2e/k8s/
