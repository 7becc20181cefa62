#!/usr/bin/env bash
# Benchmarks `wsctl sniff -r` (release build) against tshark and a bare libpcap read loop, all three
# on the same generated capture in one run.
#
#   scripts/bench-sniff.sh [--messages N] [--runs R] [--no-build] [--keep]
#
# The capture (Fixtures/captures/make-bench-capture.py, written to a temporary directory, never
# committed): N WebSocket data messages (default 240,000; at least 200,000 is the issue's floor) on
# 8 interleaved connections with their TCP and HTTP upgrade handshakes, masked client frames, echoes,
# sizes from 2 B to 100 KiB, pipelined frames, pings, one permessage-deflate connection, close + FIN.
#
# Timed, best of R rounds (default 5; the three commands take turns in each round, so a noisy
# neighbour on a shared machine hurts all of them alike), output to /dev/null, capture in page cache:
#   wsctl      .build-release/release/wsctl sniff -r FILE --json (release build with the Swift
#              runtime and Foundation linked in, --static-swift-stdlib, as all the bench scripts build)
#   tshark     tshark -r FILE -Y websocket -T fields -e websocket.opcode -e websocket.payload.text
#   bare_loop  a C program (cc -O2 … -lpcap, built here) reading every packet with pcap_next_ex and
#              summing caplen: the cost of getting the packets at all
# Each is timed in wall-clock time (the targets) and in CPU time (user + system, all threads: wsctl
# reads, dissects and prints a file on three threads).
#
# Output: `name value unit` lines; lines starting with # are context. Targets (issue 4): wsctl ≥ 20×
# faster than tshark, and ≥ 0.3 of the bare loop's packet rate. Takes about a minute (plus the build).
# Exit 1 if a check fails (a tool missing, a run failing, a message count that does not add up);
# missing a target is reported, not an error.
set -euo pipefail
cd "$(dirname "$0")/.."

messages=240000
runs=5
build=1
keep=0
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) messages=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-sniff: unknown argument $1" >&2; exit 2 ;;
    esac
done
scratch=.build-release
wsctl=$scratch/release/wsctl

fail() { echo "bench-sniff: $*" >&2; exit 1; }
for tool in python3 cc tshark; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/setup.sh installs the tools)"
done
[ -e /usr/include/pcap/pcap.h ] || [ -e /usr/include/pcap.h ] || fail "libpcap headers missing (apt-get install libpcap-dev)"

tmp=$(mktemp -d /tmp/bench-sniff.XXXXXX)
cleanup() { if [ "$keep" = 1 ]; then echo "# kept: $tmp" >&2; else rm -rf "$tmp"; fi; }
trap cleanup EXIT

echo "# command: scripts/bench-sniff.sh${args[*]:+ ${args[*]}}"
echo "# nproc: $(nproc); $(uname -srm); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(tshark --version 2>/dev/null | head -1 | sed 's/\.$//'); libpcap $(dpkg-query -W -f='${Version}' libpcap0.8 2>/dev/null || echo '?')"

if [ "$build" = 1 ]; then
    swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product wsctl >"$tmp/build.log" 2>&1 \
        || { cat "$tmp/build.log" >&2; fail "release build failed"; }
fi
[ "$runs" -ge 1 ] 2>/dev/null || fail "--runs needs a number of at least 1"
[ -x "$wsctl" ] || fail "$wsctl missing (run without --no-build)"
"$wsctl" sniff --help >/dev/null 2>&1 || fail "$wsctl has no sniff command (stale build? run without --no-build)"

# The capture.
capture=$tmp/bench.pcap
python3 Fixtures/captures/make-bench-capture.py "$capture" --messages "$messages" >"$tmp/capture.json"
read -r packets expected_messages expected_frames < <(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
print(c["packets"], c["messages"], c["frames"])' "$tmp/capture.json")
[ "$expected_messages" -ge 200000 ] || echo "# note: fewer than 200,000 messages (--messages $messages)"
echo "# capture: $(stat -c %s "$capture") bytes; $(cat "$tmp/capture.json")"

# The bare libpcap loop.
cat >"$tmp/bare-loop.c" <<'EOF'
#include <pcap/pcap.h>
#include <stdio.h>

/* Reads every packet of a capture file and sums the captured lengths. */
int main(int argc, char **argv) {
    char errors[PCAP_ERRBUF_SIZE];
    if (argc != 2) { fprintf(stderr, "usage: bare-loop FILE\n"); return 2; }
    pcap_t *p = pcap_open_offline(argv[1], errors);
    if (p == NULL) { fprintf(stderr, "%s\n", errors); return 1; }
    struct pcap_pkthdr *header;
    const u_char *data;
    unsigned long long packets = 0, bytes = 0;
    int r;
    while ((r = pcap_next_ex(p, &header, &data)) == 1) {
        packets++;
        bytes += header->caplen;
    }
    if (r == PCAP_ERROR) { fprintf(stderr, "%s\n", pcap_geterr(p)); return 1; }
    printf("%llu %llu\n", packets, bytes);
    pcap_close(p);
    return 0;
}
EOF
cc -O2 -o "$tmp/bare-loop" "$tmp/bare-loop.c" -lpcap || fail "could not compile the bare libpcap loop"

# Checks (not timed): each tool sees what was written.
read -r bare_packets _ < <("$tmp/bare-loop" "$capture")
[ "$bare_packets" = "$packets" ] || fail "bare loop read $bare_packets packets, the generator wrote $packets"
# (and how much JSON wsctl writes: the timed runs send it to /dev/null)
read -r json_bytes stats < <("$wsctl" sniff -r "$capture" --json --stats | LC_ALL=C awk '{ n += length($0) + 1; last = $0 } END { print n, last }')
sniffed=$(python3 -c 'import json, sys; s = json.loads(sys.argv[1]); print(s["messages"], s["packets"], s["connections"])' "$stats")
[ "$sniffed" = "$expected_messages $packets 8" ] \
    || fail "wsctl sniff --stats: messages packets connections = $sniffed, expected $expected_messages $packets 8"
# Every upgrade in the capture is a valid one (a wrong Sec-WebSocket-Accept in the generator once
# made all of them "upgraded": false without anyone noticing).
bad_handshakes=$("$wsctl" sniff -r "$capture" --json | grep '"kind":"handshake"' | grep -vc '"accept_matches":true,' || true)
[ "$bad_handshakes" = 0 ] || fail "$bad_handshakes handshakes in the capture were not valid upgrades"
tshark_frames=$(tshark -r "$capture" -c 20000 -Y websocket -T fields -e websocket.opcode 2>/dev/null | wc -l)
[ "$tshark_frames" -gt 1000 ] || fail "tshark found only $tshark_frames WebSocket frames in the first 20,000 packets"
echo "# checks: bare loop $bare_packets packets; wsctl $expected_messages messages in 8 connections; tshark dissects WebSocket"
echo "# wsctl --json writes $json_bytes bytes of JSON Lines for this capture"

# Timing: wall-clock and CPU (user + system, all threads) nanoseconds of one run, output discarded.
run_timed() {
    local start end status=0 user system
    local TIMEFORMAT='%3U %3S'
    start=$(date +%s%N)
    { time "$@" >/dev/null 2>"$tmp/stderr"; } 2>"$tmp/cpu" || status=$?
    end=$(date +%s%N)
    [ "$status" = 0 ] || { cat "$tmp/stderr" >&2; fail "failed: $*"; }
    read -r user system <"$tmp/cpu"
    echo "$((end - start)) $(awk -v u="$user" -v s="$system" 'BEGIN { printf "%.0f", (u + s) * 1e9 }')"
}
best_wsctl=0 best_tshark=0 best_bare=0 cpu_wsctl=0 cpu_tshark=0 cpu_bare=0
all_wsctl="" all_tshark=""
for ((round = 1; round <= runs; round++)); do
    out=$(run_timed "$wsctl" sniff -r "$capture" --json); read -r t c <<<"$out"
    if [ "$best_wsctl" = 0 ] || [ "$t" -lt "$best_wsctl" ]; then best_wsctl=$t; cpu_wsctl=$c; fi
    tw=$t; all_wsctl="$all_wsctl $t"
    out=$(run_timed tshark -r "$capture" -Y websocket -T fields -e websocket.opcode -e websocket.payload.text); read -r t c <<<"$out"
    if [ "$best_tshark" = 0 ] || [ "$t" -lt "$best_tshark" ]; then best_tshark=$t; cpu_tshark=$c; fi
    tt=$t; all_tshark="$all_tshark $t"
    out=$(run_timed "$tmp/bare-loop" "$capture"); read -r t c <<<"$out"
    if [ "$best_bare" = 0 ] || [ "$t" -lt "$best_bare" ]; then best_bare=$t; cpu_bare=$c; fi
    # Every round's times, so that the spread a shared machine gives is on the record.
    awk -v r="$round" -v w="$tw" -v t="$tt" -v l="$t" 'BEGIN {
        printf "# round %d: wsctl %.3f s, tshark %.3f s, bare loop %.3f s\n", r, w / 1e9, t / 1e9, l / 1e9 }'
done
# The medians too: the best of a few short runs gains more from a quiet moment than the best of
# long ones, so the median ratio is the cautious figure.
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { printf "%.0f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
median_wsctl=$(median "$all_wsctl") median_tshark=$(median "$all_tshark")

awk -v p="$packets" -v m="$expected_messages" -v f="$expected_frames" -v b="$(stat -c %s "$capture")" \
    -v w="$best_wsctl" -v t="$best_tshark" -v l="$best_bare" -v runs="$runs" \
    -v cw="$cpu_wsctl" -v ct="$cpu_tshark" -v cl="$cpu_bare" -v mw="$median_wsctl" -v mt="$median_tshark" 'BEGIN {
    ws = w / 1e9; ts = t / 1e9; ls = l / 1e9
    printf "capture_packets %d packets\n", p
    printf "capture_messages %d messages\n", m
    printf "capture_frames %d frames\n", f
    printf "capture_bytes %d bytes\n", b
    printf "wsctl_seconds %.3f s\n", ws
    printf "wsctl_packets_per_second %.0f packets/s\n", p / ws
    printf "wsctl_messages_per_second %.0f messages/s\n", m / ws
    printf "tshark_seconds %.3f s\n", ts
    printf "tshark_packets_per_second %.0f packets/s\n", p / ts
    printf "bare_loop_seconds %.3f s\n", ls
    printf "bare_loop_packets_per_second %.0f packets/s\n", p / ls
    speedup = ts / ws; share = ls / ws
    printf "wsctl_vs_tshark %.2f x\n", speedup
    printf "wsctl_vs_bare_loop %.3f x\n", share
    printf "wsctl_median_seconds %.3f s\n", mw / 1e9
    printf "tshark_median_seconds %.3f s\n", mt / 1e9
    printf "wsctl_vs_tshark_median %.2f x\n", mt / mw
    # CPU time of the same (fastest) runs: wsctl reads, dissects and prints on three threads, so
    # its wall time is less than its CPU time; tshark and the bare loop use one.
    printf "wsctl_cpu_seconds %.3f s\n", cw / 1e9
    printf "tshark_cpu_seconds %.3f s\n", ct / 1e9
    printf "bare_loop_cpu_seconds %.3f s\n", cl / 1e9
    if (cw > 0) printf "wsctl_vs_tshark_cpu %.2f x\n", ct / cw
    if (cw > 0) printf "wsctl_vs_bare_loop_cpu %.3f x\n", cl / cw
    printf "# best of %d; targets: wsctl_vs_tshark >= 20 (%s; median %s), wsctl_vs_bare_loop >= 0.3 (%s)\n", runs,
        (speedup >= 20 ? "met" : "NOT met"), (mt / mw >= 20 ? "met" : "NOT met"), (share >= 0.3 ? "met" : "NOT met")
}'
