#!/bin/sh
# Runs moat's benchmark workloads natively, under runc, under gVisor's runsc
# and under moat run, one after another, and prints one table.
# Needs root (runc and runsc), gcc, go; runsc is built from the Go module
# proxy when it is not on PATH.
#
#   sudo bench/compare.sh [compare flags, e.g. -n 50 -scale 2 -only native,moat]
#
# Environment: MOAT (a moat binary; built when unset), RUNSC (a runsc
# binary), RUNSC_VERSION (what to build, default latest), RUNSC_PLATFORM
# (default systrap: runsc's KVM platform hangs on nested KVM such as PVM).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/moat-compare.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

gcc -static -O2 -Wall -o "$tmp/workloads" bench/workloads/workloads.c

moat=${MOAT:-}
rev=
if [ -z "$moat" ]; then
	CGO_ENABLED=0 go build -o "$tmp/moat" ./cmd/moat
	moat=$tmp/moat
	rev="moat at $(git describe --always --dirty 2>/dev/null || echo 'an unknown commit')"
fi

runsc=${RUNSC:-$(command -v runsc || true)}
if [ -z "$runsc" ]; then
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/moat-bench
	runsc=$cache/runsc
	if [ ! -x "$runsc" ]; then
		echo "building gVisor's runsc@${RUNSC_VERSION:-latest} into $cache (a few minutes)" >&2
		mkdir -p "$cache"
		CGO_ENABLED=0 GOBIN=$cache go install "gvisor.dev/gvisor/runsc@${RUNSC_VERSION:-latest}"
	fi
fi

go build -o "$tmp/compare" ./bench/compare
"$tmp/compare" -command "bench/compare.sh $*" -workloads "$tmp/workloads" -moat "$moat" -moat-version "$rev" -runsc "$runsc" \
	-runsc-platform "${RUNSC_PLATFORM:-systrap}" "$@"
