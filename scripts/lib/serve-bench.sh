# Shared by scripts/bench-serve.sh and scripts/bench-script.sh (sourced, not run): starting and
# stopping servers pinned to $SERVER_CPU, driving Benchmarks/ws-load on $LOAD_CPU, and reading its
# `name value` output. Expects $tmp, $bin, $WINDOW, $duration, a `pids` array and $bench_name.

# start_server NAME COMMAND… — sets server_pid and server_url.
start_server() {
    local name=$1; shift
    : >"$tmp/$name.url"
    taskset -c "$SERVER_CPU" "$@" >"$tmp/$name.url" 2>>"$tmp/$name.log" &
    server_pid=$!
    pids+=("$server_pid")
    for _ in $(seq 100); do [ -s "$tmp/$name.url" ] && break; sleep 0.05; done
    server_url=$(head -1 "$tmp/$name.url")
    if [ -z "$server_url" ]; then
        echo "$bench_name: $name did not start:" >&2
        cat "$tmp/$name.log" >&2
        exit 1
    fi
}

stop_server() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

load() { taskset -c "$LOAD_CPU" "$bin/ws-load" "$@"; }

# value FILE KEY
value() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# run_echo NAME PID URL CONNECTIONS SIZE — one round; leaves echoes per server CPU-second in
# $figure and a one-line account in $detail.
run_echo() {
    local name=$1 pid=$2 url=$3 connections=$4 size=$5 out="$tmp/echo.out"
    if ! load echo --url "$url" --connections "$connections" --window "$WINDOW" --size "$size" \
        --duration "$duration" --count 50000000 --server-pid "$pid" >"$out" 2>"$tmp/echo.err"; then
        failed=1
        echo "# $name: ws-load failed: $(tr '\n' ' ' <"$tmp/echo.err")"
    fi
    figure=$(value "$out" per_server_cpu_second)
    figure=${figure:-0}
    local seconds cpu
    seconds=$(value "$out" seconds); cpu=$(value "$out" server_cpu_seconds)
    detail=$(printf '%.0f (%s echoes, %s wrong, %ss, server CPU %ss = %s of a core, load CPU %ss)' "$figure" \
        "$(value "$out" echoed)" "$(value "$out" mismatches)" "$seconds" "$cpu" "$(ratio "${cpu:-0}" "${seconds:-0}")" \
        "$(value "$out" client_cpu_seconds)")
}

