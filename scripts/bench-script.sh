#!/usr/bin/env bash
# Benchmarks `wsctl serve --script Fixtures/scripts/echo.lua` (release) against the native echo mode
# of the same binary, both measured in the same run with the same load generator (Benchmarks/ws-load:
# NIOPosix sockets, WebSocketCodec frames, every echo checked).
#
#   scripts/bench-script.sh [--duration SEC] [--no-build]
#
# Both servers run with one event-loop thread (`--threads 1`) pinned to CPU $SERVER_CPU (default 0),
# the load to CPU $LOAD_CPU (default 1), everything on 127.0.0.1. Work is counted per second of
# *server* CPU time (utime + stime from /proc/PID/stat, sampled by ws-load when sending starts and
# once every message sent has been answered), so the figures do not depend on the load generator.
#
#   echo  each server × {16, 256} connections × {32 B, 16 KiB} binary messages (the loads of
#         bench-serve.sh's echo section), a window of $WINDOW (default 8) messages in flight per
#         connection, $ROUNDS (default 2) rounds of DURATION s each, the servers taking turns:
#         echoes per server CPU-second (best round), and the ratio script/native (target ≥ 0.5).
#
# Output: `name value unit` lines; lines starting with # are context. A run takes about a minute
# (plus the build). Exit 1 if a workload failed (a bad echo, a lost connection, a script error).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=5
build=1
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-script: unknown argument $1" >&2; exit 2 ;;
    esac
done
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WINDOW=${WINDOW:-8}
ROUNDS=${ROUNDS:-2}
scratch=.build-release
script=Fixtures/scripts/echo.lua

echo "# command: scripts/bench-script.sh${args[*]:+ ${args[*]}}"
echo "# nproc: $(nproc); server on CPU $SERVER_CPU, load on CPU $LOAD_CPU; $(uname -srm)"
echo "# script: $script ($(grep -c '' "$script") lines); lua: $(pkg-config --modversion lua5.4 2>/dev/null || echo '?')"

tmp=$(mktemp -d /tmp/bench-script.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$build" = 1 ]; then
    for product in wsctl ws-load; do
        if ! swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product "$product" >"$tmp/build.log" 2>&1; then
            cat "$tmp/build.log" >&2
            exit 1
        fi
    done
fi
bin=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path 2>/dev/null)
for product in wsctl ws-load; do
    [ -x "$bin/$product" ] || { echo "bench-script: $bin/$product is missing (run without --no-build)" >&2; exit 1; }
done

ulimit -n 4096 2>/dev/null || true
failed=0

bench_name=bench-script
# start_server, stop_server, load, value, ratio, run_echo, compare_echo
source scripts/lib/serve-bench.sh

echo "# echo: binary messages, window $WINDOW per connection, $ROUNDS rounds of ${duration}s per server and workload"
echo "#   (the servers take turns; the best round counts: the least disturbed by other load on the machine)"
start_server native "$bin/wsctl" serve --port 0 --threads 1 --shutdown-grace 1s
native_pid=$server_pid native_url=$server_url
start_server script "$bin/wsctl" serve --port 0 --threads 1 --shutdown-grace 1s --script "$script"
script_pid=$server_pid script_url=$server_url
ratios=()
compare_echo script "$script_pid" "$script_url" native "$native_pid" "$native_url"
stop_server "$script_pid"
stop_server "$native_pid"
# A script error closes its connection with 1011, which ws-load reports; say so plainly too.
if grep -q 'script error' "$tmp/script.log"; then
    failed=1
    echo "# script errors in the server log:"
    grep 'script error' "$tmp/script.log" | head -5 | sed 's/^/#   /'
fi
echo "echo.ratio.min $(printf '%s\n' "${ratios[@]}" | awk '$1 > 0 { if (m == "" || $1 < m) m = $1 } END { print (m == "" ? "n/a" : m) }') script/native (target >= 0.5)"
echo "echo.ratio.geomean $(printf '%s\n' "${ratios[@]}" | awk '$1 > 0 { s += log($1); n++ } END { if (n) printf "%.2f", exp(s / n); else print "n/a" }') script/native (target >= 0.5)"

exit "$failed"
