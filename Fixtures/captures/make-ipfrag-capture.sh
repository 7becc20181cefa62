#!/usr/bin/env bash
# Writes ipfrag.pcap and ipfrag.sent.json here: a real WebSocket connection whose IPv4 packets
# were fragmented by a router on the way, captured by tcpdump on the link where they travel as
# fragments. Issue 4: sniff puts fragmented IP datagrams back together; the tests made their
# fragments from other captures until this one.
#
#   Fixtures/captures/make-ipfrag-capture.sh
#
# Needs root (network namespaces, tcpdump), python3 with websockets, iproute2. Everything runs in
# four network namespaces this script creates and deletes (nothing touches the host's network):
#
#   client (10.97.1.1, MTU 1500) -- router 1 -- (MTU 576) -- router 2 -- (10.97.3.2, MTU 1500) server
#
# Both ends send with path MTU discovery off (net.ipv4.ip_no_pmtu_disc=1: the Don't Fragment bit
# clear), so their 1,500-byte TCP segments are fragmented by r1 or r2 into the 576-byte link, where
# tcpdump captures both directions. A Python websockets client sends texts and binaries of several
# sizes (some spanning many segments), compressed and not, the server echoes them; each side
# records the SHA-256 of what it sent. Bounded: the traffic has 60 s, tcpdump is stopped after it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ $(id -u) == 0 ]] || { echo "make-ipfrag-capture.sh: needs root (network namespaces, tcpdump)" >&2; exit 2; }
python3 -c 'import websockets' 2>/dev/null || { echo "make-ipfrag-capture.sh: python3 -m pip install websockets" >&2; exit 2; }
command -v tcpdump >/dev/null || { echo "make-ipfrag-capture.sh: apt-get install tcpdump" >&2; exit 2; }

# Names of this run's own (another run at the same time keeps its own).
tag=$$
cli=wsfrag$tag-cli r1=wsfrag$tag-r1 r2=wsfrag$tag-r2 srv=wsfrag$tag-srv
ns=("$cli" "$r1" "$r2" "$srv")
work=$(mktemp -d /tmp/ipfrag.XXXXXX)
cleanup() {
    [[ -n "${tcpdump_pid:-}" ]] && kill "$tcpdump_pid" 2>/dev/null || true
    [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null || true
    for n in "${ns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
for n in "${ns[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
link() {  # link NS_A IF_A ADDR_A NS_B IF_B ADDR_B MTU
    ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
    ip -n "$1" addr add "$3/24" dev "$2"; ip -n "$4" addr add "$6/24" dev "$5"
    ip -n "$1" link set "$2" mtu "$7" up; ip -n "$4" link set "$5" mtu "$7" up
}
link "$cli" c0 10.97.1.1 "$r1" r1a 10.97.1.2 1500
link "$r1" r1b 10.97.2.1 "$r2" r2a 10.97.2.2 576
link "$r2" r2b 10.97.3.1 "$srv" s0 10.97.3.2 1500
ip -n "$cli" route add default via 10.97.1.2
ip -n "$srv" route add default via 10.97.3.1
ip -n "$r1" route add 10.97.3.0/24 via 10.97.2.2
ip -n "$r2" route add 10.97.1.0/24 via 10.97.2.1
for n in "$r1" "$r2"; do ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1; done
for n in "$cli" "$srv"; do ip netns exec "$n" sysctl -qw net.ipv4.ip_no_pmtu_disc=1; done

cat >"$work/peers.py" <<'EOF'
import asyncio, hashlib, json, random, sys
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

PORT = 28097

def sha(b): return hashlib.sha256(b).hexdigest()

async def server(record):
    sent = []
    async def echo(ws):
        async for message in ws:
            data = message.encode() if isinstance(message, str) else message
            sent.append({"opcode": "text" if isinstance(message, str) else "binary", "length": len(data), "sha256": sha(data)})
            await ws.send(message)
        json.dump(sent, open(record, "w"))
    async with serve(echo, "10.97.3.2", PORT, compression=None, max_size=None, ping_interval=None) as s:
        await asyncio.sleep(3600)

async def client(record):
    rng = random.Random(9797)
    messages = []
    for size in [40, 700, 1400, 3000, 9000, 20000, 65536]:
        messages.append("".join(rng.choice("abcdefghij klmnopqrstuvwxyz é€😀") for _ in range(size // 3)))
        messages.append(bytes(rng.randrange(256) for _ in range(size)))
    sent = []
    async with connect(f"ws://10.97.3.2:{PORT}/frag", compression=None, max_size=None, ping_interval=None, open_timeout=10) as ws:
        for m in messages:
            data = m.encode() if isinstance(m, str) else m
            sent.append({"opcode": "text" if isinstance(m, str) else "binary", "length": len(data), "sha256": sha(data)})
            await ws.send(m)
            echoed = await ws.recv()
            assert echoed == m
        await ws.close(1000, "done")
    json.dump(sent, open(record, "w"))

if sys.argv[1] == "server":
    asyncio.run(server(sys.argv[2]))
else:
    asyncio.run(asyncio.wait_for(client(sys.argv[2]), 60))
EOF

ip netns exec "$srv" python3 "$work/peers.py" server "$work/server.json" &
server_pid=$!
ip netns exec "$r2" tcpdump -i r2a -s 0 -n -U -w "$work/ipfrag.pcap" 'ip and host 10.97.1.1' 2>"$work/tcpdump.err" &
tcpdump_pid=$!
# Both ready within 5 s, or no capture: a fixture without its handshake must not be written.
ready() { for _ in $(seq 50); do "$@" && return 0; sleep 0.1; done; return 1; }
ready grep -q "listening on" "$work/tcpdump.err" || { echo "make-ipfrag-capture.sh: tcpdump did not start: $(cat "$work/tcpdump.err")" >&2; exit 1; }
ready ip netns exec "$srv" bash -c 'exec 3<>/dev/tcp/10.97.3.2/28097' 2>/dev/null || { echo "make-ipfrag-capture.sh: the server did not listen" >&2; exit 1; }
ip netns exec "$cli" python3 "$work/peers.py" client "$work/client.json"
sleep 1
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
sleep 0.5
kill -INT "$tcpdump_pid"
ready bash -c "! kill -0 $tcpdump_pid 2>/dev/null" || kill -KILL "$tcpdump_pid" 2>/dev/null || true
wait "$tcpdump_pid" 2>/dev/null || true; tcpdump_pid=
[[ -s "$work/server.json" ]] || { echo "make-ipfrag-capture.sh: the server recorded nothing" >&2; exit 1; }

python3 - "$work" "$here" <<'EOF'
import json, os, shutil, sys
sys.path.insert(0, sys.argv[2])
import pcapkit
work, here = sys.argv[1], sys.argv[2]
pcap = pcapkit.read_pcap(os.path.join(work, "ipfrag.pcap"))
fragments = 0
for r in pcap.records:
    ip = r.data[14:]
    if len(ip) >= 20 and ip[0] >> 4 == 4:
        flags_offset = int.from_bytes(ip[6:8], "big")
        if flags_offset & 0x2000 or flags_offset & 0x1FFF:
            fragments += 1
if fragments == 0:
    sys.exit("make-ipfrag-capture.sh: no IP fragments in the capture")
truth = {
    "file": "ipfrag.pcap",
    "generator": "Fixtures/captures/make-ipfrag-capture.sh",
    "description": "one WebSocket connection 10.97.1.1 -> 10.97.3.2:28097 whose 1,500-byte IPv4 packets a router fragmented into a 576-byte link, captured there",
    "packets": len(pcap.records),
    "ip_fragments": fragments,
    "client_sent": json.load(open(os.path.join(work, "client.json"))),
    "server_sent": json.load(open(os.path.join(work, "server.json"))),
    "close_code": 1000,
}
shutil.copy(os.path.join(work, "ipfrag.pcap"), os.path.join(here, "ipfrag.pcap"))
json.dump(truth, open(os.path.join(here, "ipfrag.sent.json"), "w"), indent=1)
print(f"ipfrag.pcap: {len(pcap.records)} packets, {fragments} of them IP fragments")
EOF
