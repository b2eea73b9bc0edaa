#!/bin/sh
# Rebuilds vdso.so from csrc/ (run by `go generate ./sentry/vdso`).
set -eu
cd "$(dirname "$0")"
cc=${CC:-gcc}
$cc -O2 -fPIC -fno-stack-protector -fno-asynchronous-unwind-tables -fno-builtin \
  -mno-red-zone -mcmodel=small -nostdlib -shared -Wl,-soname=linux-vdso.so.1 \
  -Wl,--hash-style=both -Wl,--version-script=csrc/vdso.map -Wl,-T,csrc/vdso.lds \
  -Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack \
  -o "${OUT:-vdso.so}" csrc/vdso.c
