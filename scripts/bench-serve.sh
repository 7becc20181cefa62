#!/usr/bin/env bash
# Benchmarks `wsctl serve` (release) against a minimal SwiftNIO NIOWebSocket echo server
# (Benchmarks/nio-echo-server), both measured in the same run with the same load generator
# (Benchmarks/ws-load: NIOPosix sockets, WebSocketCodec frames, every echo checked).
#
#   scripts/bench-serve.sh [--duration SEC] [--idle-connections N] [--no-build]
#
# Servers run with one event-loop thread pinned to CPU $SERVER_CPU (default 0), the load to CPU
# $LOAD_CPU (default 1), everything on 127.0.0.1. Work is counted per second of *server* CPU time
# (utime + stime from /proc/PID/stat, sampled by ws-load when sending starts and once every message
# sent has been answered), so the figures do not depend on how fast the load generator is.
#
#   echo       each server × {16, 256} connections × {32 B, 16 KiB} binary messages, a window of
#              $WINDOW (default 8) messages in flight per connection, $ROUNDS (default 2) rounds of
#              DURATION s each, the servers taking turns: echoes per server CPU-second (best round),
#              and the ratio wsctl/nio (target ≥ 1.5).
#   broadcast  wsctl serve --mode broadcast --no-echo-self, 1 sender and 1,000 receivers, 32 B
#              messages: deliveries per server CPU-second (NIOWebSocket has no broadcast to compare).
#   memory     each fresh server, warmed up, then N idle connections (default 10,000): RSS growth
#              per connection from VmRSS in /proc/PID/status (target ≤ 4 KiB).
#
# Output: `name value unit` lines; lines starting with # are context. A whole run takes about two
# minutes (plus the build). Exit 1 if a workload failed (a bad echo, a lost connection).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=5
idle_connections=10000
build=1
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --idle-connections) idle_connections=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-serve: unknown argument $1" >&2; exit 2 ;;
    esac
done
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WINDOW=${WINDOW:-8}
ROUNDS=${ROUNDS:-2}
scratch=.build-release

echo "# command: scripts/bench-serve.sh${args[*]:+ ${args[*]}}"
echo "# nproc: $(nproc); server on CPU $SERVER_CPU, load on CPU $LOAD_CPU; $(uname -srm)"

tmp=$(mktemp -d /tmp/bench-serve.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$build" = 1 ]; then
    for product in wsctl nio-echo-server ws-load; do
        if ! swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product "$product" >"$tmp/build.log" 2>&1; then
            cat "$tmp/build.log" >&2
            exit 1
        fi
    done
fi
bin=$(swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path 2>/dev/null)
for product in wsctl nio-echo-server ws-load; do
    [ -x "$bin/$product" ] || { echo "bench-serve: $bin/$product is missing (run without --no-build)" >&2; exit 1; }
done

# The memory test holds $idle_connections sockets in each process (server and load).
if ulimit -n 65536 2>/dev/null; then
    echo "# file limit: ulimit -n 65536"
else
    hard=$(ulimit -Hn)
    echo "# file limit: ulimit -n 65536 is not allowed here (hard limit $hard); using $hard"
    ulimit -n "$hard"
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((idle_connections + 100)) ]; then
    echo "bench-serve: the file limit ($(ulimit -n)) is too low for $idle_connections idle connections" >&2
    exit 1
fi

failed=0

bench_name=bench-serve
# start_server, stop_server, load, value, ratio, run_echo, compare_echo
source scripts/lib/serve-bench.sh

# ---------------------------------------------------------------- echo
echo "# echo: binary messages, window $WINDOW per connection, $ROUNDS rounds of ${duration}s per server and workload"
echo "#   (the servers take turns; the best round counts: the least disturbed by other load on the machine)"
start_server wsctl "$bin/wsctl" serve --port 0 --threads 1 --shutdown-grace 1s
wsctl_pid=$server_pid wsctl_url=$server_url
start_server nio "$bin/nio-echo-server" --port 0 --threads 1
nio_pid=$server_pid nio_url=$server_url
ratios=()
compare_echo wsctl "$wsctl_pid" "$wsctl_url" nio "$nio_pid" "$nio_url"
stop_server "$wsctl_pid"
stop_server "$nio_pid"
echo "echo.ratio.geomean $(printf '%s\n' "${ratios[@]}" | awk '$1 > 0 { s += log($1); n++ } END { if (n) printf "%.2f", exp(s / n); else print "n/a" }') wsctl/nio (target >= 1.5)"

# ---------------------------------------------------------------- broadcast
echo "# broadcast: wsctl serve --mode broadcast --no-echo-self, 1 sender, 1000 receivers, 32 B, window $WINDOW"
start_server broadcast "$bin/wsctl" serve --port 0 --threads 1 --mode broadcast --no-echo-self --shutdown-grace 1s
if ! load broadcast --url "$server_url" --receivers 1000 --window "$WINDOW" --size 32 --duration "$duration" \
    --count 50000 --server-pid "$server_pid" >"$tmp/broadcast.out" 2>"$tmp/broadcast.err"; then
    failed=1
    echo "# broadcast: ws-load failed: $(tr '\n' ' ' <"$tmp/broadcast.err")"
fi
printf 'broadcast.wsctl.r1000.32B %.0f deliveries/server-cpu-s\n' "$(value "$tmp/broadcast.out" per_server_cpu_second)"
echo "#   $(value "$tmp/broadcast.out" sent) messages, $(value "$tmp/broadcast.out" deliveries) deliveries (all checked, $(value "$tmp/broadcast.out" mismatches) wrong) in $(value "$tmp/broadcast.out" seconds)s; server CPU $(value "$tmp/broadcast.out" server_cpu_seconds)s, load CPU $(value "$tmp/broadcast.out" client_cpu_seconds)s"
stop_server "$server_pid"

# ---------------------------------------------------------------- memory
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }

# memory NAME COMMAND… — prints KiB per idle connection, leaves it in $figure.
memory() {
    local name=$1; shift
    start_server "mem-$name" "$@"
    local pid=$server_pid url=$server_url
    # Warm up (code paths, allocator caches) so that one-time costs are not charged to connections.
    load echo --url "$url" --connections 16 --size 32 --duration 0.3 >/dev/null 2>&1 || true
    sleep 0.5
    local before after out="$tmp/idle-$name.out"
    before=$(rss_kib "$pid")
    : >"$out"
    # Not through load(): $! must be ws-load itself (taskset execs it), not a subshell.
    taskset -c "$LOAD_CPU" "$bin/ws-load" idle --url "$url" --connections "$idle_connections" --concurrency 128 \
        --duration 120 >"$out" 2>"$tmp/idle-$name.err" &
    local loader=$!
    pids+=("$loader")
    for _ in $(seq 1200); do
        grep -q '^ready' "$out" && break
        kill -0 "$loader" 2>/dev/null || break
        sleep 0.05
    done
    if ! grep -q '^ready' "$out"; then
        failed=1
        echo "# memory $name: $idle_connections connections did not open: $(tr '\n' ' ' <"$tmp/idle-$name.err")"
        figure=0
    else
        sleep 1
        after=$(rss_kib "$pid")
        figure=$(awk -v a="$after" -v b="$before" -v n="$idle_connections" 'BEGIN { printf "%.2f", (a - b) / n }')
        echo "memory.$name.idle$idle_connections $figure KiB/connection"
        echo "#   VmRSS $before KiB before, $after KiB with $idle_connections idle connections (opened in $(value "$out" connect_seconds)s)"
    fi
    kill -TERM "$loader" 2>/dev/null || true
    wait "$loader" 2>/dev/null || true
    stop_server "$pid"
}

echo "# memory: RSS growth per idle connection, $idle_connections connections, fresh servers"
memory wsctl "$bin/wsctl" serve --port 0 --threads 1 --shutdown-grace 1s; mw=$figure
memory nio "$bin/nio-echo-server" --port 0 --threads 1; mn=$figure
echo "memory.ratio $(ratio "$mw" "$mn") wsctl/nio (target: wsctl <= 4 KiB/connection)"

exit "$failed"
