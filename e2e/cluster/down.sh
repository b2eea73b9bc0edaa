#!/usr/bin/env bash
# Tear moat's test cluster down and check that nothing is left.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/usr/local/go/bin:$PATH
go build -o e2e/cluster/cluster ./e2e/cluster
exec e2e/cluster/cluster down
