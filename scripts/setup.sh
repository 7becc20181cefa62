#!/usr/bin/env bash
# Installs what wsctl and its tests need on a fresh Debian machine with Swift: system libraries
# and tools from Debian, and the Python WebSocket client the interop tests drive. Idempotent.
set -euo pipefail
need=()
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
# Lua 5.4 for `serve --script` (the CLua module links liblua5.4).
dpkg -s liblua5.4-dev >/dev/null 2>&1 || need+=(liblua5.4-dev)
# tshark is the oracle the sniffer's tests compare with (they skip, saying why, without it).
for pkg in libpcap-dev tcpdump tshark; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! python3 -c 'import websockets' 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check 'websockets>=13' 2>&1 | grep -v "Running pip as the 'root' user" || true
fi
