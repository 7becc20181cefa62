#!/usr/bin/env bash
# Regenerate the wsctl sniff capture fixtures in this directory (see README.md).
#
#   Fixtures/captures/generate.sh                 all captures, then the perturbed copies
#   Fixtures/captures/generate.sh --only basic,large
#   Fixtures/captures/generate.sh --verify-only   check the committed files against their truth
#   Fixtures/captures/generate.sh --install ...   first install tcpdump (apt) and websockets (pip)
#
# Needs: python3 with `websockets` >= 13, tcpdump, and permission to capture on lo/any (root, or
# tcpdump with cap_net_raw,cap_net_admin). All traffic stays on 127.0.0.1 and ::1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
export PYTHONDONTWRITEBYTECODE=1

if [[ "${1:-}" == "--install" ]]; then
    shift
    if ! command -v tcpdump >/dev/null; then
        apt-get update -qq && apt-get install -y -qq tcpdump
    fi
    "$python" -c 'import websockets' 2>/dev/null || "$python" -m pip install -q websockets
fi

verify_only=0
for arg in "$@"; do [[ "$arg" == "--verify-only" ]] && verify_only=1; done

if [[ $verify_only == 0 ]]; then
    if ! command -v tcpdump >/dev/null; then
        echo "generate.sh: tcpdump is missing: apt-get update -qq && apt-get install -y -qq tcpdump" \
             "(or run generate.sh --install)" >&2
        exit 2
    fi
    if ! "$python" -c 'import websockets' 2>/dev/null; then
        echo "generate.sh: Python websockets is missing: $python -m pip install websockets" \
             "(or run generate.sh --install)" >&2
        exit 2
    fi
    if [[ $(id -u) != 0 ]] && ! getcap "$(command -v tcpdump)" 2>/dev/null | grep -q cap_net_raw; then
        echo "generate.sh: capturing needs root, or: setcap cap_net_raw,cap_net_admin=eip $(command -v tcpdump)" >&2
        exit 2
    fi
fi

exec "$python" "$here/generate.py" --out "$here" "$@"
