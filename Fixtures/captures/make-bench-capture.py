#!/usr/bin/env python3
"""Writes a synthetic WebSocket capture for scripts/bench-sniff.sh (not committed: it is large).

    make-bench-capture.py OUT.pcap [--messages N] [--connections C] [--seed S]

Classic pcap, Ethernet, microsecond timestamps. Every packet is valid IPv4/TCP (IP checksums
filled in; TCP checksums left 0, as loopback captures have them) with consistent sequence and
acknowledgement numbers, so any TCP reassembler follows it. Each connection has its three-way
handshake, an HTTP/1.1 upgrade (a random Sec-WebSocket-Key and the matching Sec-WebSocket-Accept),
then request/echo traffic: the client sends a masked message, the server echoes it unmasked.

  - C connections (default 8), their traffic interleaved packet by packet in time order; the last
    one negotiates permessage-deflate (context takeover, every message compressed as websockets does).
  - Sizes: about 85 % small texts (2-125 B, 7-bit lengths), 12 % medium (126-2,000 B, text or
    binary, 16-bit lengths), 2.7 % 2-16 KiB binaries, 0.3 % 64-100 KiB binaries (64-bit lengths).
  - Segments of at most 1,448 payload bytes (Ethernet MSS), so large messages span many packets;
    about one small request in five is pipelined with the next ones in the same segment (2-4 frames).
  - One client ping (answered by a pong) per 500 messages; close 1000 both ways and FIN at the end.
  - Pure ACKs are sent once per 8 data segments received.

N counts data messages in both directions (each request and each echo is one): at least N are
written. Prints one JSON line with the totals (packets, messages, frames, bytes).
"""

import argparse
import base64
import hashlib
import json
import random
import struct
import sys
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MSS = 1448


def ip_checksum(header):
    s = sum(struct.unpack("!10H", header))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


ETH = b"\x00" * 12 + b"\x08\x00"  # zero MACs (Linux lo), IPv4


class Writer:
    def __init__(self, path):
        self.f = open(path, "wb", buffering=1 << 22)
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        self.t = 1_790_000_000 * 1_000_000  # microseconds
        self.packets = 0
        self.bytes = 0
        self.ip_id = 0

    def packet(self, src, dst, sport, dport, seq, ack, flags, payload=b""):
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
        total = 20 + len(tcp) + len(payload)
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, self.ip_id, 0x4000, 64, 6, 0, src, dst)
        iph = iph[:10] + struct.pack("!H", ip_checksum(iph)) + iph[12:]
        frame = ETH + iph + tcp + payload
        self.t += 7  # 7 µs apart
        self.f.write(struct.pack("<IIII", self.t // 1_000_000, self.t % 1_000_000, len(frame), len(frame)))
        self.f.write(frame)
        self.packets += 1
        self.bytes += len(frame)

    def close(self):
        self.f.close()


SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


def frame_header(opcode, length, masked, rsv1=False, fin=True):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    m = 0x80 if masked else 0
    if length < 126:
        return bytes([b0, m | length])
    if length < 65536:
        return bytes([b0, m | 126]) + struct.pack("!H", length)
    return bytes([b0, m | 127]) + struct.pack("!Q", length)


def mask(payload, key):
    n = len(payload)
    if n == 0:
        return b""
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


class Connection:
    """One TCP connection's state; yields the packets of its next step when asked."""

    def __init__(self, index, rng, pools, deflate):
        self.rng = rng
        self.pools = pools
        self.deflate = deflate
        self.client_ip = bytes([127, 0, 0, 1])
        self.server_ip = bytes([127, 0, 0, 1])
        self.cport = 40000 + index
        self.sport = 8080 + (index % 2)
        self.cseq = rng.randrange(1 << 32)
        self.sseq = rng.randrange(1 << 32)
        self.c_unacked = 0  # data segments since the last pure ACK, per receiver
        self.s_unacked = 0
        self.masks = [bytes(rng.randrange(256) for _ in range(4)) for _ in range(16)]
        self.cache = {}
        if deflate:
            self.cz = zlib.compressobj(6, zlib.DEFLATED, -12)
            self.sz = zlib.compressobj(6, zlib.DEFLATED, -12)

    # -- TCP ---------------------------------------------------------------------------------
    def c2s(self, w, data, flags=ACK | PSH):
        for i in range(0, len(data), MSS):
            chunk = data[i:i + MSS]
            w.packet(self.client_ip, self.server_ip, self.cport, self.sport, self.cseq, self.sseq, flags, chunk)
            self.cseq += len(chunk)
            self.s_unacked += 1
            if self.s_unacked >= 8:
                w.packet(self.server_ip, self.client_ip, self.sport, self.cport, self.sseq, self.cseq, ACK)
                self.s_unacked = 0

    def s2c(self, w, data, flags=ACK | PSH):
        for i in range(0, len(data), MSS):
            chunk = data[i:i + MSS]
            w.packet(self.server_ip, self.client_ip, self.sport, self.cport, self.sseq, self.cseq, flags, chunk)
            self.sseq += len(chunk)
            self.c_unacked += 1
            if self.c_unacked >= 8:
                w.packet(self.client_ip, self.server_ip, self.cport, self.sport, self.cseq, self.sseq, ACK)
                self.c_unacked = 0

    def open(self, w):
        w.packet(self.client_ip, self.server_ip, self.cport, self.sport, self.cseq, 0, SYN)
        self.cseq += 1
        w.packet(self.server_ip, self.client_ip, self.sport, self.cport, self.sseq, self.cseq, SYN | ACK)
        self.sseq += 1
        w.packet(self.client_ip, self.server_ip, self.cport, self.sport, self.cseq, self.sseq, ACK)
        key = base64.b64encode(bytes(self.rng.randrange(256) for _ in range(16)))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        ext_offer = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if self.deflate else b""
        request = (b"GET /bench/%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%sUser-Agent: make-bench-capture\r\n\r\n"
                   % (self.cport, self.sport, key, ext_offer))
        self.c2s(w, request)
        ext = (b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=12; client_max_window_bits=12\r\n"
               if self.deflate else b"")
        response = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: %s\r\n%s\r\n" % (accept, ext))
        self.s2c(w, response)

    # -- WebSocket ---------------------------------------------------------------------------
    def client_frame(self, opcode, payload, pid):
        """A masked client frame; plain frames are cached per (payload, mask)."""
        if self.deflate and opcode in (1, 2):
            data = self.cz.compress(payload) + self.cz.flush(zlib.Z_SYNC_FLUSH)
            data = data[:-4]
            key = self.masks[self.rng.randrange(16)]
            return frame_header(opcode, len(data), True, rsv1=True) + key + mask(data, key)
        m = self.rng.randrange(16)
        k = (pid, m)
        f = self.cache.get(k)
        if f is None:
            key = self.masks[m]
            f = frame_header(opcode, len(payload), True) + key + mask(payload, key)
            if len(self.cache) < 4096:
                self.cache[k] = f
        return f

    def server_frame(self, opcode, payload):
        if self.deflate and opcode in (1, 2):
            data = self.sz.compress(payload) + self.sz.flush(zlib.Z_SYNC_FLUSH)
            data = data[:-4]
            return frame_header(opcode, len(data), False, rsv1=True) + data
        return frame_header(opcode, len(payload), False) + payload

    def exchange(self, w, count):
        """`count` requests (pipelined if count > 1) and their echoes; returns data messages written."""
        requests = [self.pools.pick(self.rng, small_only=count > 1 or self.deflate) for _ in range(count)]
        self.c2s(w, b"".join(self.client_frame(op, p, pid) for pid, op, p in requests))
        for pid, op, p in requests:
            self.s2c(w, self.server_frame(op, p))
        return 2 * count

    def ping(self, w):
        payload = b"bench-ping"
        key = self.masks[0]
        self.c2s(w, frame_header(9, len(payload), True) + key + mask(payload, key))
        self.s2c(w, frame_header(10, len(payload), False) + payload)

    def close(self, w):
        reason = struct.pack("!H", 1000) + b"bench done"
        key = self.masks[1]
        self.c2s(w, frame_header(8, len(reason), True) + key + mask(reason, key))
        self.s2c(w, frame_header(8, len(reason), False) + reason)
        w.packet(self.server_ip, self.client_ip, self.sport, self.cport, self.sseq, self.cseq, FIN | ACK)
        self.sseq += 1
        w.packet(self.client_ip, self.server_ip, self.cport, self.sport, self.cseq, self.sseq, FIN | ACK)
        self.cseq += 1
        w.packet(self.server_ip, self.client_ip, self.sport, self.cport, self.sseq, self.cseq, ACK)


class Pools:
    """Payloads by size class: (id, opcode, bytes)."""

    WORDS = ("sniff frame mask opcode payload deflate rsv1 fin close loopback wsctl naïve déjà vu "
             "日本語 🙂 — 0123456789 {\"type\":\"tick\",\"price\":101.25}").split(" ")

    def __init__(self, rng):
        def text(n):
            out = ""
            while len(out.encode()) < n:
                out += rng.choice(self.WORDS) + " "
            b = out.encode()[:n]
            return b.decode("utf-8", "ignore").encode()  # whole characters only

        pid = 0
        self.small, self.medium, self.big, self.huge = [], [], [], []
        for _ in range(256):
            self.small.append((pid, 1, text(rng.randrange(2, 126)))); pid += 1
        for _ in range(128):
            n = rng.randrange(126, 2001)
            if rng.random() < 0.5:
                self.medium.append((pid, 1, text(n)))
            else:
                self.medium.append((pid, 2, rng.randbytes(n)))
            pid += 1
        for _ in range(32):
            self.big.append((pid, 2, rng.randbytes(rng.randrange(2048, 16385)))); pid += 1
        for _ in range(4):
            self.huge.append((pid, 2, rng.randbytes(rng.randrange(65536, 100001)))); pid += 1

    def pick(self, rng, small_only=False):
        r = rng.random()
        if small_only or r < 0.85:
            return rng.choice(self.small)
        if r < 0.97:
            return rng.choice(self.medium)
        if r < 0.997:
            return rng.choice(self.big)
        return rng.choice(self.huge)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--messages", type=int, default=240_000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--seed", type=int, default=6455)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    pools = Pools(rng)
    w = Writer(a.out)
    conns = [Connection(i, rng, pools, deflate=(i == a.connections - 1 and a.connections > 1)) for i in range(a.connections)]
    for c in conns:
        c.open(w)
    messages = 0
    pings = 0
    since_ping = 0
    while messages < a.messages:
        c = conns[rng.randrange(len(conns))]
        n = rng.choice((2, 3, 4)) if rng.random() < 0.2 else 1
        messages += c.exchange(w, n)
        since_ping += 2 * n
        if since_ping >= 500:
            c.ping(w)
            pings += 1
            since_ping = 0
    for c in conns:
        c.close(w)
    w.close()
    print(json.dumps({"file": a.out, "packets": w.packets, "messages": messages, "pings": pings,
                      "connections": a.connections, "frames": messages + 2 * pings + 2 * a.connections,
                      "bytes": w.bytes}))


if __name__ == "__main__":
    sys.exit(main())
