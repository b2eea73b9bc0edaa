#!/usr/bin/env bash
# containerd v2.4.2 (built from the Go module proxy) and Debian's runc, the
# real container runtime stack the end-to-end and node-agent tests drive.
# Binaries go to $MOAT_TOOLS (default /usr/local/lib/moat-test/bin); a
# second run with the binaries present does nothing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export PATH=/usr/local/go/bin:$PATH
TOOLS=${MOAT_TOOLS:-/usr/local/lib/moat-test/bin}
CONTAINERD_VERSION=v2.4.2
mkdir -p "$TOOLS"

if ! command -v runc >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends runc
fi

stamp="$TOOLS/.containerd-$CONTAINERD_VERSION"
if [ ! -e "$stamp" ]; then
  GOBIN="$TOOLS" CGO_ENABLED=1 go install \
    "github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION" \
    "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
  touch "$stamp"
fi
"$TOOLS/containerd" --version
