#!/usr/bin/env bash
# A real Debian root filesystem (glibc, bash, coreutils, python3) for the
# sentry's tests of dynamically linked programs, made with debootstrap from
# Debian's mirror. Kept outside the checkout; a second run reuses it.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
DEST=${MOAT_DEBIAN_ROOTFS:-/var/cache/moat-test/debian-bookworm}
if [ -x "$DEST/usr/bin/python3" ] && [ -e "$DEST/.moat-complete" ]; then
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || { apt-get update -qq; apt-get install -y -qq --no-install-recommends debootstrap; }
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mirror=${MOAT_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
debootstrap --variant=minbase --include=python3 bookworm "$DEST" "${mirror:-http://deb.debian.org/debian}" >/tmp/moat-debootstrap.log 2>&1 || {
  tail -20 /tmp/moat-debootstrap.log; exit 1; }
touch "$DEST/.moat-complete"
