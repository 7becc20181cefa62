#!/usr/bin/env bash
# Feeds `wsctl sniff -r` damaged copies of the fixture captures, with options drawn at random,
# and checks that every run ends by itself, in time, with status 0 or 1 (1: the capture or its
# traffic broke a rule, said on stderr), and writes the same stdout and stderr, with the same
# status, as the same run with --one-thread. Bounded: a fixed number of runs, each with a time limit.
#
#   scripts/fuzz-sniff.sh [--runs N] [--seed S] [--binary PATH] [--timeout SECONDS] [--keep DIR]
#
# Inputs: the fixture captures, and in one run of five a pcapng file of three of them as interfaces
# of different link types (a Linux cooked capture among Ethernet ones), which sniff reads without
# libpcap (PcapngReader). One run in four reads its capture from a pipe, and must match the file.
# Damage (on top of what the tests' fixed seeds do, SniffRobustnessTests): bits flipped, noise,
# zeros, bytes cut from the end, a stretch repeated or dropped, frames inside TCP payloads with a
# length, opcode or flag byte changed, all of it anywhere after the 24-byte file header, so record
# headers, IP and TCP headers, HTTP and WebSocket bytes all get hit. Options: output mode, --full,
# --max-payload, --max-message-memory, --max-flow-buffer, --port, --one-thread, -w, --count,
# --flow-timeout, --check-window.
#
# Default binary: .build-release/release/wsctl (build it first: swift build -c release
# --static-swift-stdlib --scratch-path .build-release --product wsctl, as the benchmarks do); any build works, an address-sanitised one too
# (-Xswiftc -sanitize=address: a memory error is then a failed run, status 86). Failing inputs are kept in
# the --keep directory (default: a temporary one, named at the end) with the options that broke
# them. Exit 0 when every run passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=200 seed=$RANDOM binary=.build-release/release/wsctl limit=15 keep=""
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --timeout) limit=$2; shift 2 ;;
        --keep) keep=$2; shift 2 ;;
        -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "fuzz-sniff: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
# An address-sanitised build reports a memory error with status 1 by default, which passes here:
# make it 86.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}exitcode=86
[ "$runs" -ge 1 ] 2>/dev/null || { echo "fuzz-sniff: --runs needs a number of at least 1" >&2; exit 2; }
[ -x "$binary" ] || { echo "fuzz-sniff: $binary missing: build it first (see --help)" >&2; exit 2; }
work=$(mktemp -d /tmp/fuzz-sniff.XXXXXX)
keep=${keep:-$work/failures}
mkdir -p "$keep"
trap 'rm -f "$work/case.pcap" "$work"/stdout* "$work"/stderr*' EXIT

failures=0 statuses="" piped=0
for ((i = 0; i < runs; i++)); do
    # The damaged capture and the options, from (seed, i): a failure can be made again.
    options=$(python3 - "$seed" "$i" "$work/case.pcap" Fixtures/captures/*.pcap <<'EOF'
import random, struct, sys
seed, i, out, fixtures = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
r = random.Random(seed * 1_000_003 + i)

def pcapng_of(paths, big):
    """The fixtures as one pcapng file, one interface each (their own link types), packets merged by time."""
    e = ">" if big else "<"
    def block(kind, body):
        body += bytes(-len(body) % 4)
        return struct.pack(e + "II", kind, len(body) + 12) + body + struct.pack(e + "I", len(body) + 12)
    data = block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    packets = []
    for n, path in enumerate(paths):
        b = open(path, "rb").read()
        # if_tsresol 6: the fixtures' microseconds.
        data += block(1, struct.pack(e + "HHIHH", struct.unpack("<I", b[20:24])[0], 0, 262144, 9, 1) + bytes([6, 0, 0, 0]) + bytes(4))
        o = 24
        while o + 16 <= len(b):
            sec, usec, cap, wire = struct.unpack("<IIII", b[o:o + 16])
            packets.append((sec * 1_000_000 + usec, n, wire, b[o + 16:o + 16 + cap]))
            o += 16 + cap
    for t, n, wire, p in sorted(packets, key=lambda x: x[0]):
        data += block(6, struct.pack(e + "IIIII", n, t >> 32, t & 0xFFFFFFFF, len(p), wire) + p)
    return data

if r.random() < 0.2:
    # pcapng with interfaces of different link types (read without libpcap): a cooked capture
    # among Ethernet ones.
    cooked = [f for f in fixtures if "/any" in f]
    d = bytearray(pcapng_of([r.choice(cooked)] + r.sample(fixtures, 2), r.random() < 0.5))
else:
    d = bytearray(open(r.choice(fixtures), "rb").read())
for _ in range(r.randint(1, 3)):
    n = len(d)
    if n <= 25:
        break
    at = r.randrange(24, n)
    kind = r.randrange(8)
    if kind == 0:    # flip bits
        for _ in range(r.randint(1, 20)):
            d[r.randrange(24, n)] ^= 1 << r.randrange(8)
    elif kind == 1:  # noise
        for j in range(at, min(n, at + r.randint(1, 300))):
            d[j] = r.randrange(256)
    elif kind == 2:  # zeros
        k = r.randint(1, 200)
        d[at:at + k] = bytes(len(d[at:at + k]))
    elif kind == 3:  # cut the end off
        del d[r.randrange(24, n):]
    elif kind == 4:  # repeat a stretch
        s = d[at:at + r.randint(1, 3000)]
        d[at:at] = s
    elif kind == 5:  # drop a stretch
        del d[at:at + r.randint(1, 3000)]
    else:            # a WebSocket-looking byte: a first byte's flags and opcode, or a length byte
        for _ in range(r.randint(1, 10)):
            j = r.randrange(24, n)
            if d[j] in (0x81, 0x82, 0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0xC2):
                d[j] = r.choice([0x81, 0x82, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0x41, 0x8F, 0x0B, 0xF1])
            elif d[j] in (0x7E, 0x7F) or d[j] < 0x7E:
                d[j] = r.choice([0x7E, 0x7F, 0xFE, 0xFF, 0x00, 125, 126, 127])
open(out, "wb").write(d)
opts = [r.choice(["--json", "-v", "--frames", "", "--json --full"])]
opts.append(r.choice(["", "--stats"]))
opts.append(r.choice(["", "", "--check-window"]))
opts.append(r.choice(["", "", "--max-payload 0", "--max-payload 3", "--max-payload 100000"]))
opts.append(r.choice(["", "", "--max-message-memory 0", "--max-message-memory 3KB", "--max-message-memory 1MiB"]))
opts.append(r.choice(["", "", "--max-flow-buffer 4KB", "--port 8080", "--port 9001", "--one-thread", "-w /dev/null",
                      "--count 500", "--flow-timeout 1s"]))
# One run in four reads the capture from a pipe (through the spool), compared below with the file.
print(("PIPE " if r.random() < 0.25 else "") + " ".join(o for o in opts if o))
EOF
)
    pipe=""
    if [[ $options == PIPE* ]]; then pipe=1; options=${options#PIPE}; options=${options# }; fi
    set +e
    # shellcheck disable=SC2086
    if [ -n "$pipe" ]; then
        # shellcheck disable=SC2086
        timeout -s KILL "$limit" "$binary" sniff -r - $options < <(cat "$work/case.pcap") >"$work/stdout" 2>"$work/stderr"
    else
        # shellcheck disable=SC2086
        timeout -s KILL "$limit" "$binary" sniff -r "$work/case.pcap" $options >"$work/stdout" 2>"$work/stderr"
    fi
    status=$?
    why=""
    if [ "$status" != 0 ] && [ "$status" != 1 ]; then
        why=$([ "$status" = 137 ] && echo "still running after ${limit} s" || echo "exit status $status")
    elif [[ " $options " != *" --one-thread "* ]]; then
        # The same run on one thread must write the same bytes and end the same way (read from the
        # file: a run read from a pipe must match it too).
        # shellcheck disable=SC2086
        timeout -s KILL "$limit" "$binary" sniff -r "$work/case.pcap" $options --one-thread >"$work/stdout1" 2>"$work/stderr1"
        single=$?
        if [ "$single" != "$status" ]; then
            why="exit status $status, but $single with --one-thread"
        elif ! cmp -s "$work/stdout" "$work/stdout1"; then
            why="stdout differs from --one-thread's: $(cmp "$work/stdout" "$work/stdout1" 2>&1 | head -1)"
        else
            # Read from a pipe, a message that names the input calls it "standard input".
            if [ -n "$pipe" ]; then
                sed "s|$work/case.pcap|standard input|g" "$work/stderr1" >"$work/stderr1.named" && mv "$work/stderr1.named" "$work/stderr1"
            fi
            if ! cmp -s "$work/stderr" "$work/stderr1"; then
                why="stderr differs from --one-thread's"
            fi
        fi
    fi
    set -e
    statuses="$statuses $status"
    [ -n "$pipe" ] && piped=$((piped + 1))
    if [ -n "$why" ]; then
        failures=$((failures + 1))
        cp "$work/case.pcap" "$keep/seed$seed-run$i.pcap"
        run="wsctl sniff -r seed$seed-run$i.pcap $options"
        [ -n "$pipe" ] && run="cat seed$seed-run$i.pcap | wsctl sniff -r - $options"
        { echo "$run"; echo "$why"; tail -c 2000 "$work/stderr"; } >"$keep/seed$seed-run$i.txt"
        echo "FAIL run $i (seed $seed): $why: ${pipe:+(piped) }sniff -r … $options" >&2
    fi
done
counts=$(tr ' ' '\n' <<<"$statuses" | grep -v '^$' | sort | uniq -c | awk '{ printf "%s%s×%s", (NR > 1 ? ", " : ""), $1, $2 }')
echo "fuzz-sniff: $runs runs ($piped from a pipe), seed $seed, binary $binary: exit statuses ${counts}; $failures failed"
if [ "$failures" -gt 0 ]; then
    echo "fuzz-sniff: failing inputs and their options are in $keep" >&2
    exit 1
fi
rm -rf "$work"
