#!/usr/bin/env bash
# Runs Autobahn|Testsuite's fuzzingclient against `wsctl serve` (echo mode, defaults).
#
#   scripts/autobahn.sh [quick|full] [REPORT_DIR]
#
# quick: 247 cases without 9.* (limits) and 12.*/13.* (compression), ~15 s; full: all 517, ~6 min.
# The suite itself is rebuilt for Python 3 from PyPI by ../shared/tools/autobahn (a tool beside the
# project, not part of it) into $AUTOBAHN_DIR (default /tmp/autobahn). Exit 0 only when no case FAILED.
set -euo pipefail
cd "$(dirname "$0")/.."
set_name=${1:-quick}
report=${2:-$(mktemp -d /tmp/wsctl-autobahn.XXXXXX)}
tool=${AUTOBAHN_TOOL:-$(cd .. && pwd)/shared/tools/autobahn}
dir=${AUTOBAHN_DIR:-/tmp/autobahn}
config=${WSCTL_CONFIG:-release}

if [ ! -x "$dir/run-fuzzingclient.sh" ]; then
    "$tool/make-port.sh" --no-verify "$dir" >/dev/null
fi
swift build -c "$config" --product wsctl >/dev/null
bin=$(swift build -c "$config" --show-bin-path)/wsctl

log=$(mktemp)
"$bin" serve --port 0 --log-level warning >"$log.url" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$log.url" ] && break; sleep 0.1; done
url=$(head -1 "$log.url")
[ -n "$url" ] || { echo "wsctl serve did not start:" >&2; cat "$log" >&2; exit 1; }
echo "autobahn: $set_name against $url, report in $report"
if [ "$set_name" = quick ]; then
    "$dir/run-fuzzingclient.sh" -a wsctl "$url" "$report" quick
else
    "$dir/run-fuzzingclient.sh" -a wsctl "$url" "$report"
fi
