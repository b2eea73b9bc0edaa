#!/usr/bin/env bash
# Kubernetes v1.37.2 (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kubectl) and etcd, built from the Go module proxy
# for the single-node cluster of e2e/cluster. k8s.io/kubernetes cannot be
# `go install`ed (its go.mod replaces the staging modules with local paths),
# so a small build module requires it and replaces every staging module with
# its published v0.x twin; etcd's server module is built the same way.
# Binaries go to $MOAT_TOOLS/k8s (default /usr/local/lib/moat-test/bin/k8s);
# a second run with the stamp present does nothing.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
TOOLS=${MOAT_TOOLS:-/usr/local/lib/moat-test/bin}
K8S_VERSION=v1.37.2
STAGING_VERSION=v0.37.2
ETCD_VERSION=v3.7.0
OUT="$TOOLS/k8s"
BUILD=${MOAT_BUILD_CACHE:-/var/cache/moat-test/build}
mkdir -p "$OUT" "$BUILD"

stamp="$OUT/.kubernetes-$K8S_VERSION"
have_all() { for b in "$@"; do [ -x "$OUT/$b" ] || return 1; done; }
if [ ! -e "$stamp" ] || ! have_all kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; then
  dir="$BUILD/kubernetes-$K8S_VERSION"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  {
    echo "module moat.dev/build/kubernetes"
    echo
    echo "go $(sed -n 's/^go //p' "$modfile")"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$STAGING_VERSION"'#p' "$modfile"
    echo ")"
  } >go.mod
  cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
  pkgs=()
  for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  GOFLAGS=-mod=mod go get "${pkgs[@]/%/@$K8S_VERSION}" >/dev/null
  # The version the binaries report comes from ldflags, as Kubernetes' own
  # build sets it (the kubelet's node status and kubectl version show it).
  v=k8s.io/component-base/version
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  ld="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  CGO_ENABLED=0 nice go build -trimpath -ldflags "$ld" -o "$OUT/" "${pkgs[@]}"
  touch "$stamp"
fi

stamp="$OUT/.etcd-$ETCD_VERSION"
if [ ! -e "$stamp" ] || ! have_all etcd; then
  dir="$BUILD/etcd-$ETCD_VERSION"
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  printf 'module moat.dev/build/etcd\n\ngo 1.25\n' >go.mod
  GOFLAGS=-mod=mod go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
  CGO_ENABLED=0 nice go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
  touch "$stamp"
fi
"$OUT/kubectl" version --client
"$OUT/etcd" --version | sed -n 1p
