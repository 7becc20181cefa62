#!/usr/bin/env python3
"""Writes a capture that makes `sniff -w` hold many tiny packets (not committed: it is large).

    make-hold-capture.py OUT.pcap [--packets N]

A TCP connection opens first and then stays silent: no HTTP request, so whether it is a
WebSocket connection stays undecided until it times out. `-w` keeps the capture's order, so it
holds every packet that comes after that connection's first one until the connection is decided,
or until what is held reaches its limit. Then one WebSocket connection sends N packets (default
1,200,000): empty masked binary frames from the client, each answered by a bare ACK from the
server, 7 µs apart (N packets take N x 7 µs of capture time, well inside the idle timeout).
Tiny packets are the case where what holding a packet costs beside its bytes matters most.

Built with the packet writer of make-bench-capture.py (Ethernet, IPv4, TCP, HTTP upgrade).
Prints one JSON line: packets, messages.
"""

import argparse
import importlib.util
import json
import os
import random

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench", os.path.join(here, "make-bench-capture.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--packets", type=int, default=1_200_000)
    args = ap.parse_args()
    rng = random.Random(5)
    w = bench.Writer(args.out)
    # The silent connection: the TCP handshake, then nothing.
    silent = bench.Connection(1, rng, None, False)
    w.packet(silent.client_ip, silent.server_ip, silent.cport, 9999, silent.cseq, 0, bench.SYN)
    silent.cseq += 1
    w.packet(silent.server_ip, silent.client_ip, 9999, silent.cport, silent.sseq, silent.cseq, bench.SYN | bench.ACK)
    silent.sseq += 1
    w.packet(silent.client_ip, silent.server_ip, silent.cport, 9999, silent.cseq, silent.sseq, bench.ACK)
    # The WebSocket connection and its tiny frames.
    c = bench.Connection(0, rng, None, False)
    c.open(w)
    key = b"\x01\x02\x03\x04"
    frame = bench.frame_header(2, 0, True) + key
    messages = 0
    for _ in range(args.packets // 2):
        w.packet(c.client_ip, c.server_ip, c.cport, c.sport, c.cseq, c.sseq, bench.ACK | bench.PSH, frame)
        c.cseq += len(frame)
        w.packet(c.server_ip, c.client_ip, c.sport, c.cport, c.sseq, c.cseq, bench.ACK)
        messages += 1
    w.close()
    print(json.dumps({"file": args.out, "packets": w.packets, "messages": messages}))


if __name__ == "__main__":
    main()
