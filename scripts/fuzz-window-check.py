#!/usr/bin/env python3
# fuzz-window-check.py BINARY RUNS SEED: bounded fuzzing of the DEFLATE window check through
# `wsctl decode --window-bits B --json` (decode always checks). Each run deflates a message with
# repeats (zlib via Python, window 9, 12 or 15, level 1, 6 or 9), flips up to six bits, sometimes
# cuts the end, frames it as one compressed text frame and decodes it agreeing 9-15 bits. A run
# fails if decode exits with anything but 0 or 1 (violations found), or an address-sanitised
# binary reports an error. Prints the exit statuses and how many runs failed; exits 1 if any did.
import zlib, random, subprocess, sys, os
binary = sys.argv[1]; runs = int(sys.argv[2]); r = random.Random(int(sys.argv[3]))
env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
bad = 0; statuses = {}
for i in range(runs):
    text = bytes(r.choice(b"abcdefgh {}:,\"0123456789") for _ in range(r.randint(0, 5000)))
    text = text + text[: r.randint(0, len(text))]
    c = zlib.compressobj(r.choice([1, 6, 9]), zlib.DEFLATED, -r.choice([9, 12, 15]))
    p = bytearray(c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    for _ in range(r.randint(0, 6)):
        if p: p[r.randrange(len(p))] ^= 1 << r.randrange(8)
    if p and r.random() < 0.3: del p[r.randrange(len(p)):]
    n = len(p)
    hdr = bytes([0xC1, n]) if n < 126 else bytes([0xC1, 126, n >> 8, n & 255]) if n < 65536 else bytes([0xC1, 127]) + n.to_bytes(8, "big")
    hexdump = (hdr + p).hex()
    bits = str(r.choice([9, 10, 11, 12, 13, 14, 15]))
    res = subprocess.run([binary, "decode", "--window-bits", bits, "--json"], input=hexdump.encode(), capture_output=True, timeout=60, env=env)
    statuses[res.returncode] = statuses.get(res.returncode, 0) + 1
    if res.returncode not in (0, 1) or b"AddressSanitizer" in res.stderr or b"Fatal" in res.stderr:
        bad += 1; print("FAIL", i, res.returncode, res.stderr[-300:])
print(f"fuzz-window-check: {runs} runs, seed {sys.argv[3]}, statuses {statuses}, {bad} failed")
sys.exit(1 if bad else 0)
