#!/usr/bin/env bash
# containerd v1.7.35 (built from the Go module proxy) into
# $MOAT_TOOLS/containerd-1.7/: the node agent supports containerd 1.7
# (config version 2) as well as 2.x, and tests that path on the real thing.
# containerd 1.7's go.mod has exclude directives, which `go install
# pkg@version` refuses, so it is built from a scratch module that requires it.
set -euo pipefail
export PATH=/usr/local/go/bin:$PATH
TOOLS=${MOAT_TOOLS:-/usr/local/lib/moat-test/bin}
VERSION=v1.7.35
dir="$TOOLS/containerd-1.7"
mkdir -p "$dir"
stamp="$dir/.containerd-$VERSION"
if [ ! -e "$stamp" ] || [ ! -x "$dir/containerd" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    go mod init moat.test/containerd17 >/dev/null 2>&1
    go get "github.com/containerd/containerd/cmd/containerd@$VERSION" >/dev/null 2>&1
    CGO_ENABLED=1 go build -tags no_btrfs -o "$dir/containerd" github.com/containerd/containerd/cmd/containerd
  )
  touch "$stamp"
fi
"$dir/containerd" --version
