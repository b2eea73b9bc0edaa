#!/usr/bin/env bash
# A Debian 12 (bookworm) minbase root filesystem, made with debootstrap from
# Debian's archive, packed as a tar for the e2e tests' glibc image
# (dynamically linked programs: bash, coreutils, apt). Goes to
# $MOAT_TOOLS/rootfs/debian-bookworm-minbase.tar; a second run with the tar
# present does nothing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
TOOLS=${MOAT_TOOLS:-/usr/local/lib/moat-test/bin}
SUITE=bookworm
MIRROR=${MOAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
out="$TOOLS/rootfs/debian-$SUITE-minbase.tar"
[ -e "$out" ] && exit 0

if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends debootstrap
fi
mkdir -p "$TOOLS/rootfs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
nice debootstrap --variant=minbase "$SUITE" "$work/root" "$MIRROR"
# No package caches or logs in the image.
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* "$work/root/var/log/"*
tar --numeric-owner --xattrs -C "$work/root" -cf "$out.tmp" .
mv "$out.tmp" "$out"
ls -la "$out"
