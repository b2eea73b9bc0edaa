#!/usr/bin/env bash
# Tools the end-to-end tests (e2e/) drive besides containerd: the CNI
# plugins bridge, loopback and host-local (built from the Go proxy, pinned),
# crictl (for streaming: exec -t, attach, port-forward), and Debian's static
# busybox for the test images. Binaries go to $MOAT_TOOLS (default
# /usr/local/lib/moat-test/bin), CNI plugins to $MOAT_TOOLS/cni. A second run
# with everything present does nothing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
export PATH=/usr/local/go/bin:$PATH
TOOLS=${MOAT_TOOLS:-/usr/local/lib/moat-test/bin}
CNI_PLUGINS_VERSION=v1.10.0
CRI_TOOLS_VERSION=v1.37.0
mkdir -p "$TOOLS/cni"

missing=()
for p in busybox-static iproute2 util-linux; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

stamp="$TOOLS/cni/.plugins-$CNI_PLUGINS_VERSION"
if [ ! -e "$stamp" ]; then
  m=github.com/containernetworking/plugins/plugins
  GOBIN="$TOOLS/cni" CGO_ENABLED=0 nice go install \
    "$m/main/bridge@$CNI_PLUGINS_VERSION" \
    "$m/main/loopback@$CNI_PLUGINS_VERSION" \
    "$m/ipam/host-local@$CNI_PLUGINS_VERSION"
  touch "$stamp"
fi

stamp="$TOOLS/.crictl-$CRI_TOOLS_VERSION"
if [ ! -e "$stamp" ]; then
  GOBIN="$TOOLS" CGO_ENABLED=0 nice go install "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION"
  touch "$stamp"
fi
"$TOOLS/crictl" --version
