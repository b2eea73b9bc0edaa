#!/usr/bin/env bash
# Bring moat's single-node test cluster up on this machine (root) and print
# how to use it:  e2e/cluster/up.sh && eval "$(e2e/cluster/cluster env)"
# Needs the tools of .ci/install.d (make cluster-tools). See README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/go/bin:$PATH
go build -o e2e/cluster/cluster ./e2e/cluster
exec e2e/cluster/cluster "$@" up
