"""Minimal RFC 6455 client pieces on a plain socket, for tests that need a client that misbehaves
on purpose (never reads, never answers pings, never sends its request). Standard library only."""

import base64
import hashlib
import os
import socket
import struct
import time
from urllib.parse import urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def address(url):
    """(host, port, path) of a ws:// or http:// URL."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, parts.port, path


def connect(url, rcvbuf=None, timeout=5.0):
    host, port, _ = address(url)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        # Set before connect so the advertised window stays small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((host, port))
    return sock


def read_http_response(sock, deadline):
    """Reads a response head (and, with Content-Length, its body). Returns (status, headers, body, rest)."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines and lines[0].startswith("HTTP/") else None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    length = int(headers.get("content-length", ["0"])[0]) if status != 101 else 0
    while len(rest) < length and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length], rest[length:]


def handshake(url, rcvbuf=None, extra_headers=(), timeout=5.0):
    """Opens a WebSocket connection by hand. Returns (socket, leftover bytes after the 101)."""
    host, port, path = address(url)
    sock = connect(url, rcvbuf=rcvbuf, timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *extra_headers,
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, headers, _, rest = read_http_response(sock, time.monotonic() + timeout)
    if status != 101:
        raise RuntimeError(f"expected 101, got {status}")
    expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if headers.get("sec-websocket-accept") != [expected]:
        raise RuntimeError("bad Sec-WebSocket-Accept")
    return sock, rest


def encode_frame(opcode, payload, fin=True):
    """A masked client frame."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class FrameReader:
    """Reads unmasked server frames from a socket."""

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.buffer = bytearray(leftover)
        self.eof = False

    def _fill(self, deadline):
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def next_frame(self, deadline):
        """(fin, opcode, payload), or None on EOF or when the deadline passes."""
        while True:
            b = self.buffer
            if len(b) >= 2:
                n = b[1] & 0x7F
                offset = 2
                if n == 126 and len(b) >= 4:
                    n = struct.unpack("!H", b[2:4])[0]
                    offset = 4
                elif n == 127 and len(b) >= 10:
                    n = struct.unpack("!Q", b[2:10])[0]
                    offset = 10
                if (b[1] & 0x7F) < 126 or offset > 2:
                    if len(b) >= offset + n:
                        fin = bool(b[0] & 0x80)
                        opcode = b[0] & 0x0F
                        payload = bytes(b[offset:offset + n])
                        del b[:offset + n]
                        return fin, opcode, payload
            if not self._fill(deadline):
                return None


def close_payload(payload):
    """(code, reason) of a close frame's payload."""
    if len(payload) < 2:
        return None, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")
