#!/usr/bin/env bash
# metrics-server v0.8.0, built from the Go module proxy as a static binary
# (no image registry is reachable): the Kubernetes scenarios wrap it in a
# local image and deploy it, so `kubectl top pod` reads the metrics API as
# on any cluster (metrics-server scrapes the kubelet's /metrics/resource,
# which comes from the CRI stats moat's shim reports).
# The binary goes to $MOAT_TOOLS/k8s/metrics-server; a second run with the
# stamp present does nothing.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
TOOLS=${MOAT_TOOLS:-/usr/local/lib/moat-test/bin}
VERSION=v0.8.0
OUT="$TOOLS/k8s"
mkdir -p "$OUT"
stamp="$OUT/.metrics-server-$VERSION"
if [ ! -e "$stamp" ]; then
  # The version it reports, as metrics-server's own Makefile sets it.
  CGO_ENABLED=0 GOBIN="$OUT" nice go install -trimpath \
    -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$VERSION" \
    "sigs.k8s.io/metrics-server/cmd/metrics-server@$VERSION"
  touch "$stamp"
fi
"$OUT/metrics-server" --version
