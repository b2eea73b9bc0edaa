#!/usr/bin/env bash
# helm v3.22.0 (built from the Go module proxy) for the chart tests: `helm
# lint` and `helm template` of charts/moat. Goes to $MOAT_TOOLS (default
# /usr/local/lib/moat-test/bin); a second run with helm present does nothing.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
TOOLS=${MOAT_TOOLS:-/usr/local/lib/moat-test/bin}
HELM_VERSION=v3.22.0
mkdir -p "$TOOLS"
stamp="$TOOLS/.helm-$HELM_VERSION"
if [ ! -e "$stamp" ] || [ ! -x "$TOOLS/helm" ]; then
  # The version the binary reports comes from ldflags, as helm's own build sets it.
  GOBIN="$TOOLS" CGO_ENABLED=0 go install \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  touch "$stamp"
fi
"$TOOLS/helm" version --short
