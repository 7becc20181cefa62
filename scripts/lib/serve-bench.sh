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


# compare_echo A_NAME A_PID A_URL B_NAME B_PID B_URL — every echo workload (32 B and 16 KiB ×
# 16 and 256 connections), $ROUNDS rounds with the two servers taking turns, the best round of each
# counting. Prints `echo.A.cN.SIZE`, `echo.B.cN.SIZE` and `echo.ratio.cN.SIZE` (A/B) lines and each
# round as a comment; appends the ratios to the `ratios` array.
compare_echo() {
    local an=$1 ap=$2 au=$3 bn=$4 bp=$5 bu=$6 size label connections best_a best_b rounds_a rounds_b round r
    for size in 32 16384; do
        label=$([ "$size" = 32 ] && echo 32B || echo 16KiB)
        for connections in 16 256; do
            best_a=0 best_b=0 rounds_a="" rounds_b=""
            for round in $(seq "$ROUNDS"); do
                run_echo "$an" "$ap" "$au" "$connections" "$size"
                best_a=$(awk -v a="$best_a" -v b="$figure" 'BEGIN { print (b > a ? b : a) }')
                rounds_a+="#     $(printf '%-6s' "$an") round $round: $detail"$'\n'
                run_echo "$bn" "$bp" "$bu" "$connections" "$size"
                best_b=$(awk -v a="$best_b" -v b="$figure" 'BEGIN { print (b > a ? b : a) }')
                rounds_b+="#     $(printf '%-6s' "$bn") round $round: $detail"$'\n'
            done
            printf 'echo.%s.c%s.%s %.0f msg/server-cpu-s\n' "$an" "$connections" "$label" "$best_a"
            printf 'echo.%s.c%s.%s %.0f msg/server-cpu-s\n' "$bn" "$connections" "$label" "$best_b"
            r=$(ratio "$best_a" "$best_b")
            ratios+=("$r")
            echo "echo.ratio.c$connections.$label $r $an/$bn"
            printf '%s%s' "$rounds_a" "$rounds_b"
        done
    done
}
