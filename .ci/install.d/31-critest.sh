#!/usr/bin/env bash
# critest (the CRI validation suite of cri-tools, a Ginkgo test binary) and
# a container registry (distribution v3) for it to pull from on 127.0.0.1:
# no public registry is reachable, so the e2e harness builds critest's
# images and pushes them to this local one. Binaries go to $MOAT_TOOLS.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
TOOLS=${MOAT_TOOLS:-/usr/local/lib/moat-test/bin}
CRI_TOOLS_VERSION=v1.37.0
REGISTRY_VERSION=v3.1.2
mkdir -p "$TOOLS"

stamp="$TOOLS/.critest-$CRI_TOOLS_VERSION"
if [ ! -e "$stamp" ]; then
  # critest is a test binary: build it with `go test -c` from a throwaway
  # module that requires cri-tools with its test dependencies.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    go mod init critest-build >/dev/null 2>&1
    go get -t "sigs.k8s.io/cri-tools/cmd/critest@$CRI_TOOLS_VERSION"
    CGO_ENABLED=0 nice go test -c -o "$TOOLS/critest" sigs.k8s.io/cri-tools/cmd/critest
  )
  touch "$stamp"
fi

stamp="$TOOLS/.registry-$REGISTRY_VERSION"
if [ ! -e "$stamp" ]; then
  GOBIN="$TOOLS" CGO_ENABLED=0 nice go install \
    "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
  touch "$stamp"
fi
"$TOOLS/critest" --version
