#!/usr/bin/env bash
# dbus-daemon, the real message bus the node agent's systemd (D-Bus)
# restart strategy is tested on.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v dbus-daemon >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends dbus-daemon
fi
dbus-daemon --version | sed -n 1p
