#!/usr/bin/env bash
# procps (ps, free): the /proc tests run Debian's dynamically linked ps and
# free inside a sandbox, whose libproc2 parses /proc strictly.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v ps >/dev/null 2>&1 || ! command -v free >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends procps
fi
ps --version | sed -n 1p
