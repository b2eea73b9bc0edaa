#!/usr/bin/env bash
# Base toolchain for building and testing moat: make, a C compiler for the
# static test programs, git.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(make gcc libc6-dev linux-libc-dev git ca-certificates busybox-static)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
