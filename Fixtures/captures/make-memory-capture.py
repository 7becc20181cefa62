#!/usr/bin/env python3
"""Writes a capture that asks a dissector to hold many large messages at once (not committed: it is large).

    make-memory-capture.py OUT.pcap [--connections C] [--megabytes M] [--frame-kib K] [--binary] [--seed S]

C connections (default 32), every other one with permessage-deflate (context takeover). On each,
the server sends two rounds of one fragmented text message of about M MiB (default 4), a JSON
envelope whose "data" is made of one- to three-byte UTF-8 characters, in K KiB frames (default
96; over 1,024 a frame is one that dissectors take in pieces, not collect whole), then a
small envelope. With --binary the large messages are random bytes instead (quick to write, and to
dissect with a debug build). The frames of all connections are interleaved, so every connection is in the middle
of its large message at the same time: a dissector that held them all whole would hold
C x M MiB (compressed ones only as compressed bytes). `wsctl sniff --max-message-memory` bounds
that; the tests check it does (WSCtlTests/SniffRobustnessTests) with this file.

Built with the packet writer of make-bench-capture.py (Ethernet, IPv4, TCP handshakes, HTTP
upgrades). Prints one JSON line: packets, messages, the largest message's bytes.
"""

import argparse
import importlib.util
import json
import os
import random
import zlib

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench", os.path.join(here, "make-bench-capture.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

FRAME = 96 << 10


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--megabytes", type=float, default=4)
    ap.add_argument("--frame-kib", type=int, default=FRAME >> 10)
    ap.add_argument("--binary", action="store_true")
    ap.add_argument("--seed", type=int, default=9)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    w = bench.Writer(args.out)
    conns = [bench.Connection(i, rng, None, i % 2 == 1) for i in range(args.connections)]
    for c in conns:
        c.open(w)
    pieces = ["日本語", "ab", "ç", "€x", "κόσμε"]
    characters = int(args.megabytes * (1 << 20)) // 4
    messages = 0
    largest = 0
    for round_ in range(2):
        plans = []
        for i, c in enumerate(conns):
            if args.binary:
                text = rng.randbytes(4 * characters)
            else:
                data = "".join(rng.choice(pieces) for _ in range(characters))
                text = ('{"type":"upload","correlation_id":"c%d-%d","data":"%s"}' % (i, round_, data)).encode()
            largest = max(largest, len(text))
            if c.deflate:
                text = (c.sz.compress(text) + c.sz.flush(zlib.Z_SYNC_FLUSH))[:-4]
            size = args.frame_kib << 10
            plans.append((c, [text[k:k + size] for k in range(0, len(text), size)]))
        k = 0
        while any(k < len(chunks) for _, chunks in plans):
            for c, chunks in plans:
                if k < len(chunks):
                    first, last = k == 0, k == len(chunks) - 1
                    opcode = (2 if args.binary else 1) if first else 0
                    header = bench.frame_header(opcode, len(chunks[k]), False, rsv1=first and c.deflate, fin=last)
                    c.s2c(w, header + chunks[k])
            k += 1
        for c in conns:
            small = b'{"type":"after","correlation_id":"z"}'
            if c.deflate:
                small = (c.sz.compress(small) + c.sz.flush(zlib.Z_SYNC_FLUSH))[:-4]
            c.s2c(w, bench.frame_header(1, len(small), False, rsv1=c.deflate) + small)
        messages += 2 * len(conns)
    w.close()
    print(json.dumps({"packets": w.packets, "messages": messages, "largest_message": largest}))


if __name__ == "__main__":
    main()
