#!/usr/bin/env bash
# Installs what wsctl needs on a fresh Debian machine with Swift: system libraries from Debian.
# Idempotent; skips apt when everything is already there.
set -euo pipefail
need=()
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${need[@]}"
fi
