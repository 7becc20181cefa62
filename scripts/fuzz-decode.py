#!/usr/bin/env python3
"""Feeds `wsctl decode` hostile dumps of whole connections: HTTP heads (requests, 101s, refusals
with bodies of a length or in chunks, heads cut short, junk start lines) and frames (masked or
not, fragmented, control frames over 125 bytes, close frames with codes and reasons, reserved
opcodes and bits, huge lengths), joined in random order, cut at random and with bits flipped.
Fails on an exit status other than 0 or 1, a run over the time limit, or a stdout line with
--json that is not a JSON object.

Usage: scripts/fuzz-decode.py BINARY [RUNS] [SEED]   (bounded: RUNS runs of at most 10 s each)
"""
import json, random, subprocess, sys

binary = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 300
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rnd = random.Random(seed)

def frame(opcode, payload, fin=True, mask=None, rsv=0, claim=None):
    n = len(payload) if claim is None else claim
    b = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    m = 0x80 if mask is not None else 0
    if n < 126: b += bytes([m | n])
    elif n < 65536: b += bytes([m | 126]) + n.to_bytes(2, "big")
    else: b += bytes([m | 127]) + n.to_bytes(8, "big")
    if mask is not None:
        b += mask
        payload = bytes(p ^ mask[i % 4] for i, p in enumerate(payload))
    return b + payload

def text():
    words = ["hello", "déjà", "日本語", "🙂", '{"type":"ping"}', "x" * rnd.randint(0, 300)]
    return " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 8))).encode()

def piece():
    k = rnd.randint(0, 11)
    if k == 0:
        return b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    if k == 1:
        return b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    if k == 2:
        body = text()
        return b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    if k == 3:
        body = text()
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    if k == 4:
        return rnd.choice([b"POST /x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", b"GET / HTTP/1.0\r\n", b"HTTP/1.1 204\r\n\r\n",
                           b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                           b"X Y HTTP/1.1\r\n" * rnd.randint(1, 50), b"\r\n" * rnd.randint(1, 5)])
    mask = bytes(rnd.randrange(256) for _ in range(4)) if rnd.random() < 0.5 else None
    if k == 5: return frame(1, text(), mask=mask)
    if k == 6: return frame(rnd.choice([0, 1, 2]), text(), fin=rnd.random() < 0.5, mask=mask)
    if k == 7:
        code = rnd.choice([1000, 1001, 1005, 1006, 3000, 4999, 0, 65535]).to_bytes(2, "big")
        return frame(8, code + text()[: rnd.choice([10, 123, 200])], mask=mask)
    if k == 8: return frame(rnd.choice([9, 10]), text()[: rnd.choice([0, 125, 126, 300])], mask=mask)
    if k == 9: return frame(rnd.randrange(16), text(), rsv=rnd.randrange(8), mask=mask)
    if k == 10: return frame(2, b"ab", claim=rnd.choice([200, 70000, 1 << 40, (1 << 63) + 5]), mask=mask)
    return bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 40)))

failed = 0
statuses = {0: 0, 1: 0}
with_heads = 0
for run in range(runs):
    data = b"".join(piece() for _ in range(rnd.randint(1, 8)))
    if rnd.random() < 0.3 and data: data = data[: rnd.randrange(len(data) + 1)]
    if rnd.random() < 0.3 and data:
        b = bytearray(data)
        for _ in range(rnd.randint(1, 6)):
            i = rnd.randrange(len(b)); b[i] ^= 1 << rnd.randrange(8)
        data = bytes(b)
    options = ["--json"] + rnd.choice([[], ["--full"], ["--max-payload", "3"], ["--direction", "client"], ["--direction", "server"]]) \
        + rnd.choice([[], ["--deflate", "on"], ["--window-bits", "9"]])
    hexdump = data.hex() or "00"
    try:
        r = subprocess.run([binary, "decode"] + options, input=hexdump.encode(), capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        print(f"run {run}: over 10 s: {options} {hexdump[:200]}"); failed += 1; continue
    bad = r.returncode not in (0, 1)
    if not bad: statuses[r.returncode] += 1
    if b'"kind":"http_head"' in r.stdout: with_heads += 1
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        try:
            if not isinstance(json.loads(line), dict): bad = True
        except ValueError:
            bad = True
    if bad:
        failed += 1
        print(f"run {run}: status {r.returncode} {options}\n  input {hexdump[:300]}\n  stderr {r.stderr[:300]!r}")
print(f"fuzz-decode: seed {seed}, {runs} runs (exit 0: {statuses[0]}, exit 1: {statuses[1]}; {with_heads} with HTTP passed over), {failed} failed")
sys.exit(1 if failed else 0)
