#!/usr/bin/env python3
"""Produce the `wsctl sniff` capture fixtures from real WebSocket traffic on loopback.

Real peers (Python `websockets` servers and clients, plus two raw-socket servers for the failed
upgrades) talk over 127.0.0.1 / ::1 while tcpdump captures; every sender records what it sent in a
ground-truth file (`NAME.truth.json`). Each capture is then read back with the reference dissector in
pcapkit.py and compared with its truth, so a fixture whose truth does not match the wire is never
written. Finally, perturbed copies are derived from basic.pcap and fragmented.pcap.

Usage: generate.py [--out DIR] [--only NAME,NAME] [--verify-only] [--keep-going]
Run through generate.sh. Needs root (or CAP_NET_RAW) for tcpdump, and websockets >= 13.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse
import asyncio
import base64
import datetime
import hashlib
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from http import HTTPStatus

import pcapkit

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIO_TIMEOUT = 60.0  # seconds, for the traffic of one capture

# Fixed server ports, below Linux's ephemeral range (32768-60999) so that a `tcp port P` filter
# cannot catch unrelated loopback traffic whose client port happens to be P.
PORTS = {
    "basic": 28081, "deflate": 28082, "fragmented": 28083, "large": 28084, "concurrent": 28085,
    "ipv6": 28086, "any": 28087, "any-alt": 28088, "refused-ws": 28089, "refused-http": 28090,
    "refused-accept": 28091, "closecodes": 28092, "envelopes": 28093, "keepalive": 28094,
    "keepalive-back": 28095,
}

try:
    import websockets
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
except ImportError:  # reported by main()
    websockets = None


def log(*args) -> None:
    print(*args, flush=True)


# --------------------------------------------------------------------------------------------
# Ground truth recording


class Truth:
    """Ground truth of one capture: its connections, keyed by the client endpoint."""

    def __init__(self, name: str, description: str):
        self.name = name
        self.description = description
        self.connections: list[dict] = []
        self.by_client: dict[str, dict] = {}

    def new_connection(self, client: tuple, server: tuple, **extra) -> dict:
        conn = {
            "id": len(self.connections) + 1,
            "client": {"ip": client[0], "port": client[1], "text": pcapkit.endpoint_text(client[0], client[1])},
            "server": {"ip": server[0], "port": server[1], "text": pcapkit.endpoint_text(server[0], server[1])},
            "family": "ipv6" if ":" in client[0] else "ipv4",
            "handshake": None,
            "messages": [],
            "control": [],
            "close": {"client": None, "server": None, "initiator": None},
        }
        conn.update(extra)
        self.connections.append(conn)
        self.by_client[conn["client"]["text"]] = conn
        return conn

    def lookup(self, remote_address) -> dict:
        return self.by_client[pcapkit.endpoint_text(remote_address[0], remote_address[1])]


def message_entry(conn: dict, direction: str, payload: bytes, opcode: str, *, fragments: int | None = None,
                  compressed: bool = False, **extra) -> dict:
    entry = {
        "index": len(conn["messages"]),
        "direction": direction,
        "opcode": opcode,
        "length": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    if opcode == "text" and len(payload) < 200:
        entry["text"] = payload.decode("utf-8")
    if fragments is not None:
        entry["fragments"] = fragments
    entry["compressed"] = compressed
    entry.update(extra)
    conn["messages"].append(entry)
    return entry


def control_entry(conn: dict, direction: str, opcode: str, payload: bytes, **extra) -> dict:
    entry = {
        "direction": direction,
        "opcode": opcode,
        "payload_hex": payload.hex(),
        "after_messages": len(conn["messages"]),
    }
    try:
        if payload:
            entry["payload_text"] = payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    entry.update(extra)
    conn["control"].append(entry)
    return entry


def as_bytes(data) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def compressed_on(ws) -> bool:
    return any(ext.name == "permessage-deflate" for ext in ws.protocol.extensions)


async def send_recorded(ws, conn: dict, direction: str, data, *, text: bool | None = None, **extra) -> dict:
    """Send a whole message and record it (before sending, so that the order is the send order)."""
    opcode = "text" if (isinstance(data, str) if text is None else text) else "binary"
    entry = message_entry(conn, direction, as_bytes(data), opcode, compressed=compressed_on(ws), **extra)
    await ws.send(data, text=text)
    return entry


async def send_fragments_recorded(ws, conn: dict, direction: str, chunks: list, *, text: bool | None = None,
                                  delay: float = 0.0, between=None, **extra) -> dict:
    """Send `chunks` as one fragmented message. websockets sends one frame per chunk and then an
    empty final continuation frame, so the message has len(chunks) + 1 frames. With `delay`, the
    chunks come from an async iterator that sleeps between chunks; `between` (a coroutine
    function) runs after the first chunk, while the message is still open."""
    is_text = isinstance(chunks[0], str) if text is None else text
    payload = b"".join(as_bytes(c) for c in chunks)
    entry = message_entry(conn, direction, payload, "text" if is_text else "binary",
                          fragments=len(chunks) + 1, compressed=compressed_on(ws), **extra)
    if delay <= 0:
        await ws.send(list(chunks), text=text)
        return entry

    async def produce():
        for i, chunk in enumerate(chunks):
            yield chunk
            if i == 0 and between is not None:
                await asyncio.sleep(delay / 2)
                await between()
            await asyncio.sleep(delay)

    await ws.send(produce(), text=text)
    return entry


async def ping_recorded(ws, conn: dict, direction: str, payload: bytes, wait: bool = True,
                        **extra) -> None:
    """Send a ping and record it with the pong the peer's websockets answers automatically."""
    control_entry(conn, direction, "ping", payload, **extra)
    entry = conn["control"][-1]
    peer = "server" if direction == "client" else "client"
    control_entry(conn, peer, "pong", payload, automatic=True, **extra)
    waiter = await ws.ping(payload)
    if wait:
        latency = await asyncio.wait_for(waiter, 5)
        entry["rtt_ms_seen_by_sender"] = round(latency * 1000, 3)


def record_close(conn: dict, ws) -> None:
    """The close frames as the client saw them: the one it sent and the one it received."""
    def frame(close):
        if close is None:
            return None
        return {"code": int(close.code), "reason": close.reason}

    conn["close"] = {
        "client": frame(ws.protocol.close_sent),
        "server": frame(ws.protocol.close_rcvd),
        "initiator": None,
    }
    if ws.protocol.close_sent is not None or ws.protocol.close_rcvd is not None:
        rcvd_first = ws.protocol.close_rcvd_then_sent
        conn["close"]["initiator"] = "server" if rcvd_first else "client"


def record_handshake(conn: dict, ws) -> None:
    request, response = ws.request, ws.response
    key = request.headers.get("Sec-WebSocket-Key")
    accept = response.headers.get("Sec-WebSocket-Accept")
    offered = request.headers.get_all("Sec-WebSocket-Protocol")
    conn["handshake"] = {
        "path": request.path,
        "host": request.headers.get("Host"),
        "origin": request.headers.get("Origin"),
        "key": key,
        "offered_subprotocols": [p.strip() for h in offered for p in h.split(",")],
        "offered_extensions": request.headers.get("Sec-WebSocket-Extensions"),
        "status": response.status_code,
        "reason": response.reason_phrase,
        "accept": accept,
        "accept_valid": accept == pcapkit.accept_for(key),
        "subprotocol": ws.subprotocol,
        "extensions": response.headers.get("Sec-WebSocket-Extensions"),
        "extensions_parsed": pcapkit.parse_extensions(response.headers.get("Sec-WebSocket-Extensions")),
    }


CLIENT_DEFAULTS = dict(ping_interval=None, open_timeout=5, close_timeout=3, proxy=None,
                       user_agent_header="wsctl-fixtures (Python websockets)")


def pick_subprotocol(connection, offered):
    """Accept the first supported subprotocol the client offers; go on without one otherwise."""
    for name in ("chat", "wsctl.envelope.v1"):
        if name in offered:
            return name
    return None


SERVER_DEFAULTS = dict(ping_interval=None, open_timeout=5, close_timeout=3, select_subprotocol=pick_subprotocol,
                       server_header="wsctl-fixtures (Python websockets)")


async def open_client(truth: Truth, host: str, port: int, path: str, *, expect_failure: bool = False, **kwargs):
    """Connect a socket first (so the client endpoint is known even if the upgrade fails), record
    the connection, then run the WebSocket handshake on it. Returns (conn, ws), or (conn, the
    exception) with expect_failure."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # As asyncio does for the sockets it makes: no Nagle, so that each message leaves when sent
    # and the order on the wire is the order of the send calls.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    await asyncio.wait_for(loop.sock_connect(sock, (host, port)), 5)
    local = sock.getsockname()
    conn = truth.new_connection((local[0], local[1]), (host, port))
    uri_host = f"[{host}]" if ":" in host else host
    options = dict(CLIENT_DEFAULTS)
    options.update(kwargs)
    try:
        ws = await connect(f"ws://{uri_host}:{port}{path}", sock=sock, **options)
    except (InvalidHandshake, OSError, asyncio.TimeoutError) as error:
        sock.close()
        if not expect_failure:
            raise RuntimeError(f"upgrade to {uri_host}:{port}{path} failed: {type(error).__name__}: {error}")
        return conn, error
    record_handshake(conn, ws)
    return conn, ws


async def close_client(conn: dict, ws, code: int = 1000, reason: str = "") -> None:
    await ws.close(code, reason)
    await asyncio.wait_for(ws.wait_closed(), 5)
    record_close(conn, ws)


# --------------------------------------------------------------------------------------------
# The server side


def split_in(data, parts: int) -> list:
    step = max(1, -(-len(data) // parts))
    chunks = [data[i:i + step] for i in range(0, len(data), step)] or [data[:0]]
    return chunks


def make_handler(truth: Truth):
    async def handler(ws):
        conn = truth.lookup(ws.remote_address)
        path = ws.request.path
        try:
            if path.startswith("/envelope"):
                await envelope_server(ws, conn)
                return
            async for message in ws:
                if path.startswith("/frag"):
                    # Echo every message fragmented in three chunks (four frames).
                    await send_fragments_recorded(ws, conn, "server", split_in(message, 3))
                    continue
                if message == "please ping me":
                    await ping_recorded(ws, conn, "server", b"server-ping")
                if isinstance(message, str) and message.startswith("close-me:"):
                    code = int(message.split(":")[1])
                    await ws.close(code, "internal error" if code == 1011 else "server closed")
                    return
                await send_recorded(ws, conn, "server", message)
        except ConnectionClosed:
            pass
    return handler


async def envelope_server(ws, conn: dict) -> None:
    """Answer each request envelope after the delay it asks for, with the same correlation_id.
    Replies are sent from separate tasks, so a short request overtakes a long one."""
    tasks = []

    async def reply(request: dict) -> None:
        delay_ms = request["payload"].get("delay_ms", 0)
        await asyncio.sleep(delay_ms / 1000)
        kind = {"ping": "pong", "echo": "echo_reply"}.get(request["type"], "ack")
        body = {"type": kind, "payload": {"echo": request["payload"].get("text")} if kind == "echo_reply" else {},
                "metadata": {"correlation_id": request["metadata"]["correlation_id"],
                             "message_id": f"s-{request['metadata']['correlation_id']}",
                             "timestamp": iso_now()}}
        text = json.dumps(body, separators=(",", ":"))
        await send_recorded(ws, conn, "server", text,
                            envelope={"type": kind, "correlation_id": request["metadata"]["correlation_id"],
                                      "role": "reply", "server_delay_ms": delay_ms})

    try:
        async for message in ws:
            request = json.loads(message)
            if request.get("type") == "notice-please":
                text = json.dumps({"type": "notice", "payload": {"text": "server push, no correlation_id"},
                                   "metadata": {"timestamp": iso_now()}}, separators=(",", ":"))
                await send_recorded(ws, conn, "server", text,
                                    envelope={"type": "notice", "correlation_id": None, "role": "push"})
                continue
            tasks.append(asyncio.ensure_future(reply(request)))
    finally:
        for task in tasks:
            task.cancel() if not task.done() else None
        await asyncio.gather(*tasks, return_exceptions=True)


def iso_now() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def forbidding(truth: Truth):
    def process_request(connection, request):
        if request.path.startswith("/forbidden"):
            conn = truth.lookup(connection.remote_address)
            body = "Forbidden: this fixture refuses /forbidden\n"
            conn["handshake"] = refused_handshake(request.path, dict(request.headers.raw_items()), 403,
                                                  "Forbidden", None)
            conn["handshake"]["body"] = body
            return connection.respond(HTTPStatus.FORBIDDEN, body)
        return None
    return process_request


def refused_handshake(path: str, headers: dict, status: int, reason: str, accept: str | None) -> dict:
    lower = {k.lower(): v for k, v in headers.items()}
    key = lower.get("sec-websocket-key")
    return {
        "path": path,
        "host": lower.get("host"),
        "origin": lower.get("origin"),
        "key": key,
        "offered_subprotocols": [p.strip() for p in lower.get("sec-websocket-protocol", "").split(",") if p.strip()],
        "offered_extensions": lower.get("sec-websocket-extensions"),
        "status": status,
        "reason": reason,
        "accept": accept,
        "accept_valid": (accept == pcapkit.accept_for(key)) if (accept and key) else None,
        "subprotocol": None,
        "extensions": None,
        "extensions_parsed": [],
    }


async def raw_http_server(truth: Truth, host: str, port: int, mode: str):
    """A raw asyncio TCP server that reads one HTTP request and answers either a plain 400
    (mode "http400") or a 101 whose Sec-WebSocket-Accept is wrong (mode "bad-accept")."""

    async def handle(reader, writer):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip()] = value.strip()
        conn = truth.lookup(writer.get_extra_info("peername"))
        if mode == "http400":
            body = "plain HTTP server: this is not a WebSocket endpoint\n"
            writer.write(("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                          f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}").encode())
            conn["handshake"] = refused_handshake(path, headers, 400, "Bad Request", None)
            conn["handshake"]["body"] = body
        else:
            key = {k.lower(): v for k, v in headers.items()}["sec-websocket-key"]
            # Wrong on purpose: the SHA-1 of the key alone, without the RFC 6455 GUID.
            bad = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
            writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Accept: {bad}\r\n\r\n").encode())
            conn["handshake"] = refused_handshake(path, headers, 101, "Switching Protocols", bad)
            conn["handshake"]["expected_accept"] = pcapkit.accept_for(key)
        await writer.drain()
        # Wait for the client to hang up (bounded), then close our side.
        try:
            await asyncio.wait_for(reader.read(65536), 3)
        except asyncio.TimeoutError:
            pass
        writer.close()

    return await asyncio.start_server(handle, host, port, reuse_address=True)


async def plain_echo(ws):
    """Echo every message; the client side records what went each way (this server sits behind a
    front server, so its peer address is not the captured client's)."""
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def keepalive_front(truth: Truth, host: str, port: int, back: int):
    """A front server as a reverse proxy in front of a WebSocket application is one: it answers
    ordinary HTTP/1.1 requests itself, keeping the connection open (GET /health: a fixed body by
    Content-Length; POST /echo-body: the body back, chunked), and when an upgrade request comes it
    hands the connection to the websockets server on port `back`, relaying bytes both ways. Only
    this front port is captured, so the capture holds the client's side of a kept-alive connection
    whose upgrade is not its first request, with frames made by websockets."""

    async def pipe(reader, writer):
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            try:
                writer.write_eof()
            except (OSError, RuntimeError):
                pass

    async def handle(reader, writer):
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                if "websocket" in headers.get("upgrade", "").lower():
                    back_reader, back_writer = await asyncio.open_connection("127.0.0.1", back)
                    back_writer.write(head)
                    await back_writer.drain()
                    await asyncio.gather(pipe(reader, back_writer), pipe(back_reader, writer))
                    break
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET" and path == "/health":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")
                else:
                    half = len(body) // 2
                    chunks = [body[:half], body[half:]]
                    out = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                    out += b"".join(b"%x;part\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\nX-Done: yes\r\n\r\n"
                    writer.write(out)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port, reuse_address=True)


async def ws_server(truth: Truth, host: str, port: int, **kwargs):
    options = dict(SERVER_DEFAULTS)
    options.update(kwargs)
    server = await serve(make_handler(truth), host, port, reuse_address=True, **options)
    return server


def listening(server, port: int) -> bool:
    return any(sock.getsockname()[1] == port for sock in server.sockets)


# --------------------------------------------------------------------------------------------
# tcpdump


class Capture:
    def __init__(self, path: str, interface: str, bpf: str, linktype: str | None = None):
        self.path = path
        self.interface = interface
        self.bpf = bpf
        self.linktype = linktype
        self.proc: subprocess.Popen | None = None
        self.stderr = b""
        self.stats: dict = {}
        self.command = ["tcpdump", "-i", interface, "-s", "0", "-n", "-U", "--immediate-mode",
                        "-B", "32768", "-w", path]
        if linktype:
            self.command += ["-y", linktype]
        self.command += [bpf]

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while b"listening on" not in self.stderr:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                self.stop(force=True)
                raise RuntimeError(f"tcpdump did not start: {self.stderr.decode(errors='replace').strip()}")
            ready, _, _ = select.select([self.proc.stderr], [], [], min(remaining, 0.2))
            if ready:
                chunk = os.read(self.proc.stderr.fileno(), 4096)
                if not chunk:
                    continue
                self.stderr += chunk

    def stop(self, force: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                rest = self.proc.communicate(timeout=10)[1]
                self.stderr += rest or b""
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                if not force:
                    raise RuntimeError("tcpdump did not stop after SIGINT")
        else:
            self.stderr += self.proc.stderr.read() or b""
        text = self.stderr.decode(errors="replace")
        for key, pattern in (("captured", r"(\d+) packets? captured"),
                             ("received_by_filter", r"(\d+) packets? received by filter"),
                             ("dropped_by_kernel", r"(\d+) packets? dropped by kernel")):
            match = re.search(pattern, text)
            if match:
                self.stats[key] = int(match.group(1))
        match = re.search(r"link-type (\S+) \(([^)]*)\)", text)
        if match:
            self.stats["linktype_reported"] = f"{match.group(1)} ({match.group(2)})"
        self.proc = None


def tool_versions() -> dict:
    out = subprocess.run(["tcpdump", "--version"], capture_output=True, text=True).stdout
    versions = {"python": sys.version.split()[0], "websockets": websockets.__version__}
    for line in out.splitlines():
        if line.startswith("tcpdump version"):
            versions["tcpdump"] = line.split()[2]
        if line.startswith("libpcap version"):
            versions["libpcap"] = line.split()[2]
    return versions


# --------------------------------------------------------------------------------------------
# Exchanges


def utf8_text(rng: random.Random, size: int) -> str:
    """Deterministic text of exactly `size` UTF-8 bytes, with some multi-byte characters."""
    words = ["WebSocket", "frame", "mask", "opcode", "payload", "déjà", "vu", "naïve", "Ünïcode", "—", "日本語",
             "🙂", "wsctl", "sniff", "loopback", "deflate", "0123456789", "fin", "rsv1", "close"]
    parts, total = [], 0
    while total < size:
        word = rng.choice(words) + (" " if rng.random() < 0.9 else "\n")
        parts.append(word)
        total += len(word.encode())
    encoded = "".join(parts).encode()[:size]
    text = encoded.decode("utf-8", errors="ignore")
    text += "." * (size - len(text.encode()))
    return text


async def basic_exchange(ws, conn: dict) -> None:
    """The exchange of basic.pcap, ipv6.pcap and any.pcap: echoes of text and binary messages of
    the three length encodings' boundaries, pings both ways, an unsolicited pong, close 1000."""

    async def echo(data, **extra):
        await send_recorded(ws, conn, "client", data, **extra)
        reply = await asyncio.wait_for(ws.recv(), 5)
        assert as_bytes(reply) == as_bytes(data), "echo mismatch"

    await echo("Hello, WebSocket!")
    await echo(bytes(range(256)))
    await echo("")
    await echo("héllo wörld — ünïcödé 🙂")
    await ping_recorded(ws, conn, "client", b"ping-1")
    await ping_recorded(ws, conn, "client", b"")
    control_entry(conn, "client", "pong", b"unsolicited")
    await ws.pong(b"unsolicited")
    await echo("please ping me")  # the server pings (the client pongs), then echoes
    await echo("x" * 125)  # longest 7-bit length
    await echo(bytes(i % 251 for i in range(126)))  # shortest 16-bit length
    await echo(utf8_text(random.Random(7), 300))  # text over 200 bytes: no "text" in the truth
    await echo(b"")
    await close_client(conn, ws, 1000, "bye")


async def scenario_basic(truth: Truth, host: str = "127.0.0.1", port: int | None = None) -> None:
    port = PORTS["basic"] if port is None else port
    conn, ws = await open_client(truth, host, port, "/echo?room=1", compression=None,
                                 subprotocols=["wsctl.v1", "chat"], origin="http://localhost",
                                 additional_headers={"X-Fixture": truth.name})
    await basic_exchange(ws, conn)


REPEATED = [
    "The quick brown fox jumps over the lazy dog. " * 4,
    "The quick brown fox jumps over the lazy dog. " * 4 + "(again)",
    '{"event":"tick","symbol":"WSCTL","price":101.25,"volume":1200,"exchange":"loopback"}',
    '{"event":"tick","symbol":"WSCTL","price":101.50,"volume":1300,"exchange":"loopback"}',
    '{"event":"tick","symbol":"WSCTL","price":101.75,"volume":900,"exchange":"loopback"}',
    "The quick brown fox jumps over the lazy dog. " * 4 + "(third time)",
]


async def deflate_exchange(ws, conn: dict) -> None:
    for text in REPEATED:
        await send_recorded(ws, conn, "client", text)
        await asyncio.wait_for(ws.recv(), 5)
    await send_recorded(ws, conn, "client", b"\x00\x01\x02\x03" * 64)
    await asyncio.wait_for(ws.recv(), 5)
    await send_recorded(ws, conn, "client", utf8_text(random.Random(11), 4000))
    await asyncio.wait_for(ws.recv(), 5)
    await send_recorded(ws, conn, "client", "tiny")
    await asyncio.wait_for(ws.recv(), 5)
    await close_client(conn, ws, 1000, "")


async def scenario_deflate(truth: Truth) -> None:
    port = PORTS["deflate"]
    # 1: websockets' defaults on both sides (context takeover both ways, window bits 12).
    conn, ws = await open_client(truth, "127.0.0.1", port, "/echo", compression="deflate")
    conn["note"] = "default permessage-deflate: context takeover in both directions"
    await deflate_exchange(ws, conn)
    # 2: the client asks for server_no_context_takeover and client_max_window_bits=10.
    conn, ws = await open_client(truth, "127.0.0.1", port, "/echo", compression=None, extensions=[
        ClientPerMessageDeflateFactory(server_no_context_takeover=True, client_max_window_bits=10,
                                       compress_settings={"memLevel": 5})])
    conn["note"] = "server_no_context_takeover and client_max_window_bits=10"
    await deflate_exchange(ws, conn)
    # 3: client_no_context_takeover and server_max_window_bits=9.
    conn, ws = await open_client(truth, "127.0.0.1", port, "/echo", compression=None, extensions=[
        ClientPerMessageDeflateFactory(client_no_context_takeover=True, server_max_window_bits=9,
                                       compress_settings={"memLevel": 5})])
    conn["note"] = "client_no_context_takeover and server_max_window_bits=9"
    await deflate_exchange(ws, conn)


async def scenario_fragmented(truth: Truth) -> None:
    port = PORTS["fragmented"]
    conn, ws = await open_client(truth, "127.0.0.1", port, "/frag", compression=None)
    conn["note"] = "the server echoes every message in three chunks (four frames)"

    async def roundtrip(chunks, **kwargs):
        await send_fragments_recorded(ws, conn, "client", chunks, **kwargs)
        await asyncio.wait_for(ws.recv(), 5)

    await roundtrip(["Hello, ", "fragmented ", "world"])
    await roundtrip([b"\x00" * 10, b"\x01" * 20, b"\x02" * 30])

    async def mid_ping():
        # Sent between the first and second fragments of the message being sent.
        in_progress = len(conn["messages"]) - 1
        await ping_recorded(ws, conn, "client", b"between-fragments", wait=False, during_message=in_progress)
        for entry in conn["control"][-2:]:
            entry["after_messages"] = in_progress

    await roundtrip(["slow ", "async ", "iterator ", "with a ping inside"], delay=0.02, between=mid_ping)
    smile = "héllo wörld 🙂".encode()
    # Fragment boundaries inside multi-byte characters: only the whole message is valid UTF-8.
    await send_fragments_recorded(ws, conn, "client", [smile[:2], smile[2:9], smile[9:14], smile[14:]], text=True,
                                  utf8_split_across_fragments=True)
    await asyncio.wait_for(ws.recv(), 5)
    await roundtrip(["abc", "", "def"])  # an empty fragment in the middle
    await roundtrip([bytes([n]) * 1000 for n in range(10)])
    await close_client(conn, ws, 1000, "fragments done")

    conn, ws = await open_client(truth, "127.0.0.1", port, "/frag", compression="deflate")
    conn["note"] = "fragmented and compressed: RSV1 on the first frame only, one deflate stream per message"
    await roundtrip(["compressed ", "and ", "fragmented ", "compressed and fragmented"])
    await roundtrip([b"\xaa" * 500, b"\xbb" * 500, b"\xaa" * 500])
    await roundtrip(["compressed ", "and ", "fragmented ", "compressed and fragmented"])
    await close_client(conn, ws, 1000, "")


LARGE_BINARY = int(1.5 * 1024 * 1024)
LARGE_TEXT = int(1.2 * 1024 * 1024)


async def scenario_large(truth: Truth) -> None:
    port = PORTS["large"]
    conn, ws = await open_client(truth, "127.0.0.1", port, "/echo", compression=None, max_size=None)
    for data in (random.Random(1).randbytes(LARGE_BINARY), utf8_text(random.Random(2), LARGE_TEXT),
                 random.Random(3).randbytes(65535), random.Random(4).randbytes(65536)):
        await send_recorded(ws, conn, "client", data)
        reply = await asyncio.wait_for(ws.recv(), 20)
        assert as_bytes(reply) == as_bytes(data)
    await close_client(conn, ws, 1000, "large done")


async def scenario_concurrent(truth: Truth) -> None:
    port = PORTS["concurrent"]

    async def client(i: int) -> None:
        await asyncio.sleep(i * 0.003)
        compression = "deflate" if i in (1, 3) else None
        conn, ws = await open_client(truth, "127.0.0.1", port, f"/echo?client={i}", compression=compression)
        conn["note"] = f"concurrent client {i}" + (" (permessage-deflate)" if compression else "")
        for j in range(4):
            data = f"conn {i} message {j}" if j % 2 == 0 else bytes([i, j]) * (10 + i)
            await send_recorded(ws, conn, "client", data)
            await asyncio.wait_for(ws.recv(), 5)
            await asyncio.sleep(0.007)
        await close_client(conn, ws, 1000, f"client {i} done")

    await asyncio.gather(*(client(i) for i in range(5)))


async def scenario_refused(truth: Truth) -> None:
    cases = [
        (PORTS["refused-ws"], "/forbidden", "websockets server, process_request answers 403"),
        (PORTS["refused-http"], "/chat", "plain HTTP server answers 400"),
        (PORTS["refused-accept"], "/chat", "raw server answers 101 with a wrong Sec-WebSocket-Accept"),
    ]
    for port, path, note in cases:
        conn, result = await open_client(truth, "127.0.0.1", port, path, compression=None,
                                         subprotocols=["chat"], expect_failure=True)
        conn["note"] = note
        if not isinstance(result, Exception):
            raise RuntimeError(f"the upgrade on port {port} should have failed")
        conn["client_error"] = f"{type(result).__name__}: {result}"
        if isinstance(result, InvalidStatus):
            assert result.response.status_code == conn["handshake"]["status"]
        conn["close"] = {"client": None, "server": None, "initiator": None}
        await asyncio.sleep(0.05)


async def scenario_keepalive(truth: Truth) -> None:
    """Two ordinary requests on one kept-alive connection (a GET answered by Content-Length, a POST
    whose body comes back chunked), then the upgrade on the same connection and the basic exchange."""
    loop = asyncio.get_running_loop()
    port = PORTS["keepalive"]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 5)
    local = sock.getsockname()
    conn = truth.new_connection((local[0], local[1]), ("127.0.0.1", port))
    sent = received = 0

    async def exchange(request: bytes, response_end: bytes) -> bytes:
        nonlocal sent, received
        await loop.sock_sendall(sock, request)
        sent += len(request)
        got = b""
        while not got.endswith(response_end):
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
            if not chunk:
                raise RuntimeError("keepalive: the front server closed the connection")
            got += chunk
        received += len(got)
        return got

    got = await exchange(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", b"\r\n\r\nok\n")
    assert got.startswith(b"HTTP/1.1 200 "), got
    body = bytes(range(256)) * 3
    got = await exchange(b"POST /echo-body HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
                         b"0\r\nX-Done: yes\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in got, got
    conn["http_before_upgrade"] = {"exchanges": 2, "client_bytes": sent, "server_bytes": received}
    options = dict(CLIENT_DEFAULTS)
    options.update(compression=None)
    ws = await connect(f"ws://127.0.0.1:{port}/echo", sock=sock, **options)
    record_handshake(conn, ws)
    conn["note"] = "the upgrade is the third request on the connection, after GET /health and POST /echo-body"
    for text in ["after two ordinary requests", "second"]:
        await send_recorded(ws, conn, "client", text)
        echo = await asyncio.wait_for(ws.recv(), 5)
        message_entry(conn, "server", as_bytes(echo), "text")
    await send_recorded(ws, conn, "client", bytes(range(40)))
    echo = await asyncio.wait_for(ws.recv(), 5)
    message_entry(conn, "server", as_bytes(echo), "binary")
    await close_client(conn, ws)


CLOSE_CASES = [
    ("client", 1000, "normal closure"),
    ("client", 1001, "going away"),
    ("client", 1008, "policy violation"),
    ("client", 3000, "registered code"),
    ("client", 4001, "au revoir — private 🙂"),
    ("server", 1011, "internal error"),
    ("abort", None, None),
]


async def scenario_closecodes(truth: Truth) -> None:
    port = PORTS["closecodes"]
    for who, code, reason in CLOSE_CASES:
        conn, ws = await open_client(truth, "127.0.0.1", port, f"/echo?close={code}", compression=None)
        await send_recorded(ws, conn, "client", f"hello before {code or 'abort'}")
        await asyncio.wait_for(ws.recv(), 5)
        if who == "client":
            conn["note"] = f"the client closes with {code}"
            await close_client(conn, ws, code, reason)
        elif who == "server":
            conn["note"] = f"the server closes with {code}"
            message_entry(conn, "client", f"close-me:{code}".encode(), "text")
            await ws.send(f"close-me:{code}")
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed:
                pass
            await asyncio.wait_for(ws.wait_closed(), 5)
            record_close(conn, ws)
        else:
            conn["note"] = "the client resets the TCP connection (SO_LINGER 0): no close frame either way"
            sock = ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            ws.transport.abort()
            await asyncio.wait_for(ws.wait_closed(), 5)
            conn["close"] = {"client": None, "server": None, "initiator": None}
            conn["tcp_end"] = "client RST"
        await asyncio.sleep(0.05)


async def scenario_envelopes(truth: Truth) -> None:
    port = PORTS["envelopes"]
    conn, ws = await open_client(truth, "127.0.0.1", port, "/envelope", compression=None,
                                 subprotocols=["wsctl.envelope.v1"])
    conn["note"] = "request/reply envelopes paired by correlation_id; replies come back out of order"
    delays = [40, 10, 25, 5, 15]
    expected = 0

    async def request(cid: str, kind: str, delay: int, **payload) -> None:
        body = {"type": kind, "payload": dict(delay_ms=delay, **payload),
                "metadata": {"correlation_id": cid, "message_id": f"m-{cid}", "timestamp": iso_now(),
                             "client_id": "fixture-client"}}
        await send_recorded(ws, conn, "client", json.dumps(body, separators=(",", ":")),
                            envelope={"type": kind, "correlation_id": cid, "role": "request"})

    # Pipelined: five requests at once, answered after 40, 10, 25, 5 and 15 ms.
    for n, delay in enumerate(delays, start=1):
        await request(f"c-{n}", "ping", delay)
        expected += 1
    for _ in range(expected):
        await asyncio.wait_for(ws.recv(), 5)
    # Then one at a time.
    for n in range(6, 9):
        await request(f"c-{n}", "echo", 20, text=f"request {n}")
        await asyncio.wait_for(ws.recv(), 5)
    await send_recorded(ws, conn, "client", json.dumps({"type": "notice-please", "payload": {}}),
                        envelope={"type": "notice-please", "correlation_id": None, "role": "push"})
    await asyncio.wait_for(ws.recv(), 5)
    await close_client(conn, ws, 1000, "")
    # Pairs for request/reply latency.
    requests = {m["envelope"]["correlation_id"]: m for m in conn["messages"]
                if m.get("envelope", {}).get("role") == "request"}
    conn["pairs"] = []
    for m in conn["messages"]:
        env = m.get("envelope", {})
        if env.get("role") == "reply":
            req = requests[env["correlation_id"]]
            conn["pairs"].append({"correlation_id": env["correlation_id"], "request_index": req["index"],
                                  "reply_index": m["index"], "server_delay_ms": env["server_delay_ms"]})


# --------------------------------------------------------------------------------------------
# Running one capture


class Spec:
    def __init__(self, name, description, scenario, ports, interface="lo", linktype=None, host="127.0.0.1",
                 servers=None):
        self.name = name
        self.description = description
        self.scenario = scenario
        self.ports = ports
        self.interface = interface
        self.linktype = linktype
        self.host = host
        self.servers = servers or [("ws", host, ports[0], {})]


async def run_capture(spec: Spec, workdir: str, versions: dict) -> tuple[str, str]:
    truth = Truth(spec.name, spec.description)
    servers = []
    try:
        for kind, host, port, options in spec.servers:
            if kind == "ws":
                options = {k: (v(truth) if k == "process_request" else v) for k, v in options.items()}
                server = await ws_server(truth, host, port, **options)
            elif kind == "echo":
                server = await serve(plain_echo, host, port, reuse_address=True, **options)
            elif kind == "keepalive-front":
                server = await keepalive_front(truth, host, port, **options)
            else:
                server = await raw_http_server(truth, host, port, kind)
            if not listening(server, port):
                raise RuntimeError(f"server on {host} port {port} is not listening")
            servers.append(server)
        bpf = " or ".join(f"tcp port {p}" for p in spec.ports)
        pcap_path = os.path.join(workdir, spec.name + ".pcap")
        capture = Capture(pcap_path, spec.interface, bpf, spec.linktype)
        capture.start()
        try:
            await asyncio.wait_for(spec.scenario(truth), SCENARIO_TIMEOUT)
            await asyncio.sleep(0.3)  # let the last FIN/ACKs through
        finally:
            await asyncio.get_running_loop().run_in_executor(None, capture.stop)
    finally:
        for server in servers:
            server.close()
        for server in servers:
            await asyncio.wait_for(server.wait_closed(), 10)

    if os.path.exists(pcap_path) and os.stat(pcap_path).st_uid != os.getuid():
        os.chown(pcap_path, os.getuid(), os.getgid())  # tcpdump drops to its own user: take the file back
    pcap = pcapkit.read_pcap(pcap_path)
    if pcap.truncated:
        raise RuntimeError(f"{spec.name}: tcpdump wrote a truncated file: {pcap.truncated}")
    if capture.stats.get("captured") != len(pcap.records):
        raise RuntimeError(f"{spec.name}: tcpdump says {capture.stats.get('captured')} packets captured, "
                           f"the file holds {len(pcap.records)}")
    short_records = [n for n, r in enumerate(pcap.records, start=1) if len(r.data) < r.orig_len]
    if short_records:
        raise RuntimeError(f"{spec.name}: packets cut by the snaplen: {short_records[:5]}")
    if capture.stats.get("dropped_by_kernel", 0):
        raise RuntimeError(f"{spec.name}: {capture.stats['dropped_by_kernel']} packets dropped by the kernel")
    document = {
        "file": spec.name + ".pcap",
        "description": spec.description,
        "generator": "Fixtures/captures/generate.py",
        "capture": {
            "interface": spec.interface,
            "filter": bpf,
            "linktype": pcap.linktype,
            "linktype_name": pcap.linktype_name,
            "linktype_forced": spec.linktype,
            "snaplen": pcap.snaplen,
            "timestamp_precision": "nanosecond" if pcap.nanosecond else "microsecond",
            "packets": len(pcap.records),
            "tcpdump": " ".join(c if c != pcap_path else spec.name + ".pcap" for c in capture.command[:-1])
            + f" '{bpf}'",
            "tcpdump_stats": capture.stats,
            "versions": versions,
            "checksums_note": "loopback captures carry TCP checksums the kernel never filled in (offload)",
            "flows_interleaved": interleaved(pcap),
        },
        "connections": truth.connections,
    }
    check_against_wire(pcap, document)
    add_capture_latencies(pcap, document)
    truth_path = os.path.join(workdir, spec.name + ".truth.json")
    write_json(truth_path, document)
    return pcap_path, truth_path


def add_capture_latencies(pcap: pcapkit.PcapFile, document: dict) -> None:
    """For request/reply pairs: the time between the packets that completed the request and the
    reply, from the capture's own timestamps (what a dissector pairing by correlation_id reports)."""
    server_ports = {c["server"]["port"] for c in document["connections"]}
    flows = {f.key: f for f in pcapkit.reassemble(pcap, server_ports)}
    for conn in document["connections"]:
        if not conn.get("pairs"):
            continue
        flow = flows[(conn["client"]["ip"], conn["client"]["port"], conn["server"]["ip"], conn["server"]["port"])]
        messages = pcapkit.dissect(flow).messages
        for pair in conn["pairs"]:
            request = pcap.records[messages[pair["request_index"]].complete_packet - 1]
            reply = pcap.records[messages[pair["reply_index"]].complete_packet - 1]
            pair["capture_latency_ms"] = round((pcap.timestamp(reply) - pcap.timestamp(request)) * 1000, 3)
            if pair["capture_latency_ms"] < pair["server_delay_ms"]:
                raise RuntimeError(f"reply to {pair['correlation_id']} faster than the server's delay")


def interleaved(pcap: pcapkit.PcapFile) -> bool:
    """Whether data packets of different TCP flows alternate in the file."""
    seen, last = set(), None
    for record in pcap.records:
        packet = pcapkit.parse_tcp(pcap.linktype, record.data)
        if packet is None or not packet.payload:
            continue
        key = tuple(sorted([(packet.src, packet.sport), (packet.dst, packet.dport)]))
        if key != last:
            if key in seen:
                return True
            seen.add(key)
            last = key
    return False


def write_json(path: str, document: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1, ensure_ascii=False)
        handle.write("\n")


# --------------------------------------------------------------------------------------------
# Checking a truth file against the capture with the reference dissector


def check_against_wire(pcap: pcapkit.PcapFile, document: dict, *, assume_websocket: bool = False,
                       allow_gaps: bool = False) -> dict:
    """Raise if the capture does not carry exactly what the truth says. Returns statistics."""
    name = document["file"]
    server_ports = {c["server"]["port"] for c in document["connections"]}
    flows = pcapkit.reassemble(pcap, server_ports)
    by_key = {(f.key[0], f.key[1], f.key[2], f.key[3]): f for f in flows}
    problems = []
    stats = {"flows": len(flows), "duplicates": 0, "overlaps": 0, "out_of_order": 0, "gaps": []}
    if len(flows) != len(document["connections"]):
        problems.append(f"{len(flows)} TCP flows in the capture, {len(document['connections'])} in the truth")
    for conn in document["connections"]:
        key = (conn["client"]["ip"], conn["client"]["port"], conn["server"]["ip"], conn["server"]["port"])
        flow = by_key.get(key)
        label = f"{name} connection {conn['id']} ({conn['client']['text']} -> {conn['server']['text']})"
        if flow is None:
            problems.append(f"{label}: not in the capture")
            continue
        for half in (flow.client, flow.server):
            stats["duplicates"] += half.duplicates
            stats["overlaps"] += half.overlaps
            stats["out_of_order"] += half.out_of_order
            if half.conflicts:
                problems.append(f"{label}: {half.conflicts} overlapping bytes differ")
            if half.gaps:
                stats["gaps"].append({"connection": conn["id"], "direction": "client" if half is flow.client
                                      else "server", "gaps": half.gaps})
                if not allow_gaps:
                    problems.append(f"{label}: gaps {half.gaps}")
        dissected = pcapkit.dissect(flow, assume_websocket=assume_websocket,
                                    http_before_upgrade=conn.get("http_before_upgrade"))
        problems += [f"{label}: {e}" for e in dissected.errors]
        hs = conn["handshake"]
        if hs is not None and not assume_websocket:
            if dissected.status != hs["status"]:
                problems.append(f"{label}: status {dissected.status}, truth {hs['status']}")
            if dissected.request and dissected.request[0].split(" ")[1] != hs["path"]:
                problems.append(f"{label}: path {dissected.request[0]!r}, truth {hs['path']}")
            if dissected.response:
                headers = dissected.response[1]
                if headers.get("sec-websocket-extensions") != hs["extensions"]:
                    problems.append(f"{label}: extensions {headers.get('sec-websocket-extensions')!r}, "
                                    f"truth {hs['extensions']!r}")
                if headers.get("sec-websocket-protocol") != hs["subprotocol"]:
                    problems.append(f"{label}: subprotocol {headers.get('sec-websocket-protocol')!r}")
                if hs["status"] == 101 and hs.get("accept") != headers.get("sec-websocket-accept"):
                    problems.append(f"{label}: accept differs")
        wire = [(m.direction, m.opcode, len(m.payload), pcapkit.sha256(m.payload), m.frames, m.compressed)
                for m in dissected.messages]
        told = [(m["direction"], m["opcode"], m["length"], m["sha256"], m.get("fragments", 1), m["compressed"])
                for m in conn["messages"]]
        if wire != told:
            for i in range(max(len(wire), len(told))):
                w = wire[i] if i < len(wire) else None
                t = told[i] if i < len(told) else None
                if w != t:
                    problems.append(f"{label}: message {i}: wire {short(w)} truth {short(t)}")
                    break
        wire_control = [(c[0], c[1], c[2].hex()) for c in dissected.control]
        told_control = [(c["direction"], c["opcode"], c["payload_hex"]) for c in conn["control"]]
        if sorted(wire_control) != sorted(told_control):
            problems.append(f"{label}: control frames wire {wire_control} truth {told_control}")
        for side in ("client", "server"):
            told_close = conn["close"][side]
            got = dissected.closes.get(side)
            got_close = None if got is None else {"code": got[0], "reason": got[1]}
            if told_close != got_close:
                problems.append(f"{label}: {side} close wire {got_close} truth {told_close}")
    if problems:
        raise RuntimeError("truth does not match the capture:\n  " + "\n  ".join(problems))
    return stats


def short(item):
    if item is None:
        return None
    return tuple(x[:12] + "…" if isinstance(x, str) and len(x) > 20 else x for x in item)


# --------------------------------------------------------------------------------------------
# Perturbed copies


def data_packets(pcap: pcapkit.PcapFile) -> list[tuple[int, pcapkit.TCPPacket]]:
    """(0-based index, packet) for each TCP packet with payload."""
    out = []
    for i, record in enumerate(pcap.records):
        packet = pcapkit.parse_tcp(pcap.linktype, record.data)
        if packet is not None and packet.payload:
            out.append((i, packet))
    return out


def handshake_ends(pcap: pcapkit.PcapFile, document: dict) -> dict:
    """For each connection id: (client stream offset after the request, server offset after the
    response), from the reference reassembler."""
    server_ports = {c["server"]["port"] for c in document["connections"]}
    flows = {f.key: f for f in pcapkit.reassemble(pcap, server_ports)}
    out = {}
    for conn in document["connections"]:
        flow = flows[(conn["client"]["ip"], conn["client"]["port"], conn["server"]["ip"], conn["server"]["port"])]
        out[conn["id"]] = (flow, pcapkit.parse_http_head(flow.client.data)[2],
                           pcapkit.parse_http_head(flow.server.data)[2])
    return out


def derived_document(source: dict, name: str, description: str, perturbation: dict,
                     pcap: pcapkit.PcapFile) -> dict:
    document = json.loads(json.dumps(source))
    document["file"] = name + ".pcap"
    document["description"] = description
    document["derived_from"] = source["file"]
    document["capture"]["packets"] = len(pcap.records)
    document["capture"].pop("tcpdump_stats", None)
    document["perturbation"] = perturbation
    return document


def make_reordered(source_pcap, source_doc, workdir):
    """Swap a few data segments with the next data segment of the same direction of the same
    connection. Timestamps stay in place (the later slot goes to the packet that now arrives later)."""
    pcap = pcapkit.read_pcap(source_pcap)
    packets = data_packets(pcap)
    records = list(pcap.records)
    swaps = []
    used: set[int] = set()
    for n, (i, a) in enumerate(packets):
        if len(swaps) >= 4:
            break
        for j, b in packets[n + 1:n + 4]:
            if (b.src, b.sport, b.dst, b.dport) == (a.src, a.sport, a.dst, a.dport) and \
                    b.seq == (a.seq + len(a.payload)) & 0xFFFFFFFF and i not in used and j not in used \
                    and not a.payload.startswith(b"GET ") and j - i <= 3 and n % 3 == 0:
                records[i] = pcap.records[j].copy(ts_sec=pcap.records[i].ts_sec, ts_frac=pcap.records[i].ts_frac)
                records[j] = pcap.records[i].copy(ts_sec=pcap.records[j].ts_sec, ts_frac=pcap.records[j].ts_frac)
                used.update((i, j))
                swaps.append({"packets": [i + 1, j + 1], "direction_src": pcapkit.endpoint_text(a.src, a.sport),
                              "seq_first_in_file_now": b.seq, "seq_second_in_file_now": a.seq,
                              "lengths": [len(b.payload), len(a.payload)]})
                break
    if len(swaps) < 2:
        raise RuntimeError("reordered: found fewer than two swappable segment pairs")
    out = pcapkit.PcapFile(pcap.linktype, pcap.snaplen, pcap.nanosecond, pcap.byte_order, pcap.version, records)
    path = os.path.join(workdir, "reordered.pcap")
    pcapkit.write_pcap(path, out)
    doc = derived_document(source_doc, "reordered", "fragmented.pcap with data segments swapped with the next "
                           "segment of the same direction (packet numbers are 1-based, in this file)",
                           {"kind": "reordered", "swaps": swaps,
                            "expect": "the same messages as the source after reassembly"}, out)
    stats = check_against_wire(out, doc)
    if stats["out_of_order"] < len(swaps):
        raise RuntimeError(f"reordered: only {stats['out_of_order']} out-of-order segments")
    write_json(os.path.join(workdir, "reordered.truth.json"), doc)
    return path


def make_duplicated(source_pcap, source_doc, workdir):
    """Insert exact retransmissions of a few segments, and one overlapping retransmission that
    re-sends the second half of a client segment plus the first half of the next one (so part of
    its bytes are new when it arrives, and the real next segment then overlaps it)."""
    pcap = pcapkit.read_pcap(source_pcap)
    packets = data_packets(pcap)
    ends = handshake_ends(pcap, source_doc)
    conn_id = source_doc["connections"][0]["id"]
    flow, request_end, response_end = ends[conn_id]
    client_key = (flow.client.src[0], flow.client.src[1])
    inserts = []  # (insert before this 0-based index of the source, record, description)
    request = next((i, p) for i, p in packets if p.payload.startswith(b"GET "))
    inserts.append((request[0] + 1, pcap.records[request[0]], {"kind": "exact", "of_source_packet": request[0] + 1,
                                                                "what": "the HTTP upgrade request"}))
    client_frames = [(i, p) for i, p in packets if (p.src, p.sport) == client_key and
                     flow.client.offset_of(p.seq) >= request_end]
    server_frames = [(i, p) for i, p in packets if (p.src, p.sport) != client_key and
                     flow.server.offset_of(p.seq) >= response_end]
    i, p = client_frames[2]
    inserts.append((min(i + 3, len(pcap.records)), pcap.records[i],
                    {"kind": "exact", "of_source_packet": i + 1, "what": "a client frame segment, 2 packets later"}))
    i, p = server_frames[3]
    inserts.append((i + 1, pcap.records[i], {"kind": "exact", "of_source_packet": i + 1,
                                             "what": "a server frame segment, right after it"}))
    # Overlapping retransmission.
    for n in range(4, len(client_frames) - 1):
        (i, s), (j, t) = client_frames[n], client_frames[n + 1]
        if t.seq == (s.seq + len(s.payload)) & 0xFFFFFFFF and len(s.payload) >= 4 and len(t.payload) >= 4:
            break
    else:
        raise RuntimeError("duplicated: no pair of consecutive client segments")
    half_s, half_t = len(s.payload) // 2, len(t.payload) // 2
    payload = s.payload[half_s:] + t.payload[:half_t]
    frame = pcapkit.rebuild_tcp(pcap.linktype, pcap.records[i].data, s.seq + half_s, payload)
    crafted = pcap.records[i].copy(data=frame, orig_len=len(frame))
    inserts.append((i + 1, crafted, {"kind": "overlapping", "of_source_packets": [i + 1, j + 1],
                                     "what": f"bytes {half_s}.. of source packet {i + 1} ({len(s.payload) - half_s} "
                                             f"already seen) plus the first {half_t} bytes of source packet "
                                             f"{j + 1} (new), before that packet",
                                     "seq": (s.seq + half_s) & 0xFFFFFFFF, "length": len(payload)}))
    records = []
    described = []
    by_position: dict[int, list] = {}
    for position, record, info in inserts:
        by_position.setdefault(position, []).append((record, info))
    for index in range(len(pcap.records) + 1):
        for record, info in by_position.get(index, []):
            previous = records[-1]
            records.append(record.copy(ts_sec=previous.ts_sec, ts_frac=previous.ts_frac))
            described.append(dict(info, packet=len(records)))
        if index < len(pcap.records):
            records.append(pcap.records[index])
    out = pcapkit.PcapFile(pcap.linktype, pcap.snaplen, pcap.nanosecond, pcap.byte_order, pcap.version, records)
    path = os.path.join(workdir, "duplicated.pcap")
    pcapkit.write_pcap(path, out)
    doc = derived_document(source_doc, "duplicated", "basic.pcap with retransmissions inserted: three exact "
                           "copies and one overlapping segment (packet numbers are 1-based; `packet` is in this "
                           "file, `of_source_packet` in the source)",
                           {"kind": "duplicated", "inserted": described,
                            "expect": "the same messages as the source after reassembly; each message once"}, out)
    stats = check_against_wire(out, doc)
    if stats["duplicates"] < 3 or stats["overlaps"] < 1:
        raise RuntimeError(f"duplicated: reassembler saw {stats}")
    write_json(os.path.join(workdir, "duplicated.truth.json"), doc)
    return path


def make_nohandshake(source_pcap, source_doc, workdir):
    """Drop every packet of each connection before the first packet that carries WebSocket frame
    bytes (SYN, SYN-ACK, the HTTP request and response and their ACKs)."""
    pcap = pcapkit.read_pcap(source_pcap)
    ends = handshake_ends(pcap, source_doc)
    drop: set[int] = set()
    cut = []
    for conn in source_doc["connections"]:
        flow, request_end, response_end = ends[conn["id"]]
        firsts = []
        for half, end in ((flow.client, request_end), (flow.server, response_end)):
            for segment in half.segments:
                if segment.start + len(segment.data) > end:
                    if segment.start < end:
                        raise RuntimeError("nohandshake: a segment carries both the handshake and a frame")
                    firsts.append(segment.packet_number)
                    break
        first = min(firsts)
        for number in flow.packets:
            if number < first:
                drop.add(number)
        cut.append({"connection": conn["id"], "first_kept_source_packet": first,
                    "dropped_packets": sum(1 for n in flow.packets if n < first)})
    records = [r for n, r in enumerate(pcap.records, start=1) if n not in drop]
    out = pcapkit.PcapFile(pcap.linktype, pcap.snaplen, pcap.nanosecond, pcap.byte_order, pcap.version, records)
    path = os.path.join(workdir, "nohandshake.pcap")
    pcapkit.write_pcap(path, out)
    ports = sorted({c["server"]["port"] for c in source_doc["connections"]})
    doc = derived_document(source_doc, "nohandshake", "basic.pcap without the packets before the first "
                           "WebSocket frame of each connection: dissect with --port " +
                           ",".join(map(str, ports)),
                           {"kind": "nohandshake", "cut": cut, "sniff_port": ports,
                            "expect": "no handshake; the messages and close frames of the source, uncompressed "
                                      "(the source negotiated no extension)"}, out)
    for conn in doc["connections"]:
        conn["handshake_in_source"] = conn["handshake"]
        conn["handshake"] = None
    check_against_wire(out, doc, assume_websocket=True)
    write_json(os.path.join(workdir, "nohandshake.truth.json"), doc)
    return path


def make_truncated(source_pcap, source_doc, workdir):
    """Cut the file in the middle of a packet record (inside its data), near the middle of the
    connection. The truth keeps the messages and close frames carried entirely by the complete records."""
    pcap = pcapkit.read_pcap(source_pcap)
    packets = data_packets(pcap)
    index, _ = packets[len(packets) // 2]
    offsets = pcapkit.record_offsets(pcap)
    cut_at = offsets[index] + 16 + len(pcap.records[index].data) // 2
    blob = pcapkit.pcap_bytes(pcap)[:cut_at]
    path = os.path.join(workdir, "truncated.pcap")
    with open(path, "wb") as handle:
        handle.write(blob)
    out = pcapkit.parse_pcap(blob)
    assert out.truncated and out.truncated[0] == index + 1 and len(out.records) == index
    server_ports = {c["server"]["port"] for c in source_doc["connections"]}
    source_flows = {f.key: f for f in pcapkit.reassemble(pcap, server_ports)}
    doc = derived_document(source_doc, "truncated", f"basic.pcap cut inside record {index + 1} "
                           f"(byte {cut_at} of {len(pcapkit.pcap_bytes(pcap))})",
                           {"kind": "truncated", "complete_records": index, "incomplete_record": index + 1,
                            "file_size": cut_at, "record_offset": offsets[index],
                            "record_captured_length": len(pcap.records[index].data),
                            "reader_message": out.truncated[2],
                            "expect": "a warning naming packet " + str(index + 1) + "; the messages below, "
                                      "which the complete records carry entirely"}, out)
    for conn in doc["connections"]:
        flow = source_flows[(conn["client"]["ip"], conn["client"]["port"], conn["server"]["ip"], conn["server"]["port"])]
        dissected = pcapkit.dissect(flow)
        keep = [m.complete_packet <= index for m in dissected.messages]
        conn["messages_in_source"] = len(conn["messages"])
        conn["messages"] = [m for m, k in zip(conn["messages"], keep) if k]
        control_keep = [c[3] <= index for c in dissected.control]
        # Control frames: keep those whose packet survived (matched by order; same order as truth).
        conn["control"] = [c for c, k in zip(sorted_control(conn["control"], dissected.control), control_keep) if k]
        for side in ("client", "server"):
            got = dissected.closes.get(side)
            if got is None or got[2] > index:
                conn["close"][side] = None
    check_against_wire(out, doc)
    write_json(os.path.join(workdir, "truncated.truth.json"), doc)
    return path


def sorted_control(told: list, wire: list) -> list:
    """Truth control entries reordered to match the wire order (they are compared as multisets)."""
    remaining = list(told)
    result = []
    for direction, opcode, payload, _ in wire:
        for n, entry in enumerate(remaining):
            if (entry["direction"], entry["opcode"], entry["payload_hex"]) == (direction, opcode, payload.hex()):
                result.append(remaining.pop(n))
                break
    return result + remaining


def check_gap(pcap: pcapkit.PcapFile, doc: dict) -> list:
    server_ports = {c["server"]["port"] for c in doc["connections"]}
    flows = pcapkit.reassemble(pcap, server_ports)
    if len(flows) != len(doc["connections"]):
        raise RuntimeError("gap: flow count differs")
    return [g for f in flows for half in (f.client, f.server) for g in half.gaps]


def make_gap(source_pcap, source_doc, workdir):
    """Remove one client data segment in the middle of the ten-fragment binary message of
    fragmented.pcap: a gap of known size that the dissector must report."""
    pcap = pcapkit.read_pcap(source_pcap)
    conn = source_doc["connections"][0]
    server_ports = {c["server"]["port"] for c in source_doc["connections"]}
    flows = {f.key: f for f in pcapkit.reassemble(pcap, server_ports)}
    flow = flows[(conn["client"]["ip"], conn["client"]["port"], conn["server"]["ip"], conn["server"]["port"])]
    dissected = pcapkit.dissect(flow)
    target = next(n for n, m in enumerate(dissected.messages) if m.direction == "client" and m.frames == 11)
    message = dissected.messages[target]
    segments = [s for s in flow.client.segments
                if message.first_offset <= s.start and s.start + len(s.data) <= message.end_offset]
    victim = segments[len(segments) // 2]
    records = [r for n, r in enumerate(pcap.records, start=1) if n != victim.packet_number]
    out = pcapkit.PcapFile(pcap.linktype, pcap.snaplen, pcap.nanosecond, pcap.byte_order, pcap.version, records)
    path = os.path.join(workdir, "gap.pcap")
    pcapkit.write_pcap(path, out)
    truth_index = target  # the dissected order is the truth's order (checked when the source was made)
    doc = derived_document(source_doc, "gap", "fragmented.pcap with one client segment removed (lost by the "
                           "capture) in the middle of a fragmented binary message",
                           {"kind": "gap", "removed_source_packet": victim.packet_number, "connection": conn["id"],
                            "direction": "client", "stream_offset": victim.start, "gap_bytes": len(victim.data),
                            "lost_message_index": truth_index,
                            "expect": "a gap of gap_bytes reported in the client direction of connection 1; "
                                      "message lost_message_index cannot be complete; what comes after is "
                                      "recovered only if the dissector resynchronises"}, out)
    stats = check_gap(out, doc)
    if stats != [(victim.start, len(victim.data))]:
        raise RuntimeError(f"gap: the reassembler found {stats}")
    write_json(os.path.join(workdir, "gap.truth.json"), doc)
    return path


# --------------------------------------------------------------------------------------------
# Main


def specs() -> list[Spec]:
    any_default = any_link_default()
    other = "LINUX_SLL2" if any_default != "LINUX_SLL2" else "LINUX_SLL"
    return [
        Spec("basic", "text and binary echo, pings both ways, an unsolicited pong, close 1000; no compression",
             scenario_basic, [PORTS["basic"]]),
        Spec("deflate", "permessage-deflate: defaults (context takeover), then server_no_context_takeover + "
             "client_max_window_bits=10, then client_no_context_takeover + server_max_window_bits=9; "
             "repeated content so that context takeover matters",
             scenario_deflate, [PORTS["deflate"]]),
        Spec("fragmented", "fragmented text and binary messages both ways (websockets ends each with an empty "
             "final continuation frame), a ping between fragments, UTF-8 split across fragments, an empty "
             "fragment; a second connection fragmented and compressed",
             scenario_fragmented, [PORTS["fragmented"]]),
        Spec("large", "1.5 MiB binary and 1.2 MiB text echoed, plus 65535- and 65536-byte binaries; "
             "no compression", scenario_large, [PORTS["large"]],
             servers=[("ws", "127.0.0.1", PORTS["large"], {"max_size": None, "compression": None})]),
        Spec("concurrent", "five interleaved connections, clients 1 and 3 with permessage-deflate",
             scenario_concurrent, [PORTS["concurrent"]]),
        Spec("ipv6", "the basic exchange over ::1",
             lambda t: scenario_basic(t, "::1", PORTS["ipv6"]), [PORTS["ipv6"]], host="::1"),
        Spec("any", f"the basic exchange captured with -i any (tcpdump's default link type for it)",
             lambda t: scenario_basic(t, "127.0.0.1", PORTS["any"]), [PORTS["any"]], interface="any"),
        Spec("any-sll2" if other == "LINUX_SLL2" else "any-sll1",
             f"the basic exchange captured with -i any -y {other} (the other cooked-capture version)",
             lambda t: scenario_basic(t, "127.0.0.1", PORTS["any-alt"]), [PORTS["any-alt"]], interface="any",
             linktype=other),
        Spec("refused", "failed upgrades: a websockets server answering 403 from process_request, a plain HTTP "
             "server answering 400, and a raw server answering 101 with a wrong Sec-WebSocket-Accept",
             scenario_refused, [PORTS["refused-ws"], PORTS["refused-http"], PORTS["refused-accept"]],
             servers=[("ws", "127.0.0.1", PORTS["refused-ws"], {"process_request": forbidding}),
                      ("http400", "127.0.0.1", PORTS["refused-http"], {}),
                      ("bad-accept", "127.0.0.1", PORTS["refused-accept"], {})]),
        Spec("closecodes", "one connection per close: the client closes with 1000, 1001, 1008, 3000 and 4001 "
             "(UTF-8 reason), the server closes with 1011, and one TCP reset without close frames",
             scenario_closecodes, [PORTS["closecodes"]]),
        Spec("keepalive", "an upgrade after two ordinary requests on one kept-alive connection (GET answered by "
             "Content-Length, POST answered chunked), through a front server that relays the upgrade to websockets",
             scenario_keepalive, [PORTS["keepalive"]],
             servers=[("echo", "127.0.0.1", PORTS["keepalive-back"], {"compression": None}),
                      ("keepalive-front", "127.0.0.1", PORTS["keepalive"], {"back": PORTS["keepalive-back"]})]),
        Spec("envelopes", "JSON envelopes: requests with correlation_id answered after a delay (pipelined, so "
             "out of order), then one at a time, and a server push without correlation_id",
             scenario_envelopes, [PORTS["envelopes"]]),
    ]


_ANY_DEFAULT: list[str] = []


def any_link_default() -> str:
    """The link type tcpdump picks for `-i any` without -y (LINUX_SLL or LINUX_SLL2, depending on
    the libpcap version): start it briefly with a filter nothing matches and read what it says."""
    if not _ANY_DEFAULT:
        probe = Capture(os.devnull, "any", "tcp port 1 and host 127.0.0.254")
        probe.start()
        probe.stop()
        reported = probe.stats.get("linktype_reported", "LINUX_SLL (probe failed)")
        _ANY_DEFAULT.append(reported.split()[0])
    return _ANY_DEFAULT[0]


PERTURBED = [
    ("reordered", "fragmented", make_reordered),
    ("duplicated", "basic", make_duplicated),
    ("nohandshake", "basic", make_nohandshake),
    ("truncated", "basic", make_truncated),
    ("gap", "fragmented", make_gap),
]


def verify_only(out_dir: str) -> int:
    failures = 0
    for name in sorted(os.listdir(out_dir)):
        if not name.endswith(".truth.json"):
            continue
        with open(os.path.join(out_dir, name), encoding="utf-8") as handle:
            doc = json.load(handle)
        pcap = pcapkit.read_pcap(os.path.join(out_dir, doc["file"]))
        kind = doc.get("perturbation", {}).get("kind")
        try:
            if kind == "gap":
                gaps = check_gap(pcap, doc)
                want = [(doc["perturbation"]["stream_offset"], doc["perturbation"]["gap_bytes"])]
                if gaps != want:
                    raise RuntimeError(f"gaps {gaps}, truth {want}")
            else:
                check_against_wire(pcap, doc, assume_websocket=kind == "nohandshake")
            log(f"ok   {doc['file']}")
        except RuntimeError as error:
            failures += 1
            log(f"FAIL {doc['file']}: {error}")
    return 1 if failures else 0


def summary(out_dir: str, names: list[str]) -> None:
    log("")
    log(f"{'file':<22}{'bytes':>10}  {'link type':<12}{'packets':>8}{'conns':>6}{'msgs':>6}  note")
    total = 0
    for name in names:
        pcap_path = os.path.join(out_dir, name + ".pcap")
        truth_path = os.path.join(out_dir, name + ".truth.json")
        if not os.path.exists(pcap_path):
            continue
        size = os.path.getsize(pcap_path) + os.path.getsize(truth_path)
        total += size
        pcap = pcapkit.read_pcap(pcap_path)
        with open(truth_path, encoding="utf-8") as handle:
            doc = json.load(handle)
        messages = sum(len(c["messages"]) for c in doc["connections"])
        note = doc.get("perturbation", {}).get("kind", "")
        if pcap.truncated:
            note += f" (cut in record {pcap.truncated[0]})"
        log(f"{name + '.pcap':<22}{os.path.getsize(pcap_path):>10}  {pcap.linktype_name:<12}{len(pcap.records):>8}"
            f"{len(doc['connections']):>6}{messages:>6}  {note}")
    log(f"total (pcap + truth): {total} bytes ({total / 1048576:.2f} MiB)")


ATTEMPTS = 3  # per capture: a timing accident (e.g. a message overtaken) gets two more tries


def port_free(port: int) -> bool:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        probe = socket.socket(family, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
        except OSError as error:
            if family == socket.AF_INET6 and error.errno == 99:  # no IPv6: the ipv6 capture will say so
                continue
            return False
        finally:
            probe.close()
    return True


def resolve_ports() -> None:
    """Keep the fixed ports when free; move a busy one to a free port in 28100-28999."""
    taken = set(PORTS.values())
    for key, port in PORTS.items():
        if port_free(port):
            continue
        for candidate in range(28100, 29000):
            if candidate not in taken and port_free(candidate):
                log(f"port {port} ({key}) is busy: using {candidate}")
                PORTS[key] = candidate
                taken.add(candidate)
                break
        else:
            raise RuntimeError(f"no free port for {key}")


def read_back(out_dir: str, names: list[str]) -> None:
    """Read each file with tcpdump (and tshark when installed) as an independent check."""
    tshark = shutil.which("tshark")
    for name in names:
        path = os.path.join(out_dir, name + ".pcap")
        if not os.path.exists(path):
            continue
        with open(path[:-5] + ".truth.json", encoding="utf-8") as handle:
            doc = json.load(handle)
        run = subprocess.run(["tcpdump", "-r", path, "-nn"], capture_output=True, text=True, timeout=60)
        lines = len(run.stdout.splitlines())
        want = doc["capture"]["packets"]
        truncated = doc.get("perturbation", {}).get("kind") == "truncated"
        if lines != want or (truncated != ("truncated dump file" in run.stderr)):
            raise RuntimeError(f"tcpdump -r {name}.pcap printed {lines} packets, the truth says {want}: "
                               f"{run.stderr.strip()}")
        if tshark:
            run = subprocess.run([tshark, "-r", path, "-Y", "websocket", "-T", "fields", "-e", "websocket.opcode"],
                                 capture_output=True, text=True, timeout=120)
            frames = sum(len(line.split(",")) for line in run.stdout.split())
            log(f"  tshark: {name}.pcap: {frames} WebSocket frames")
    log(f"read back with tcpdump -r: {len(names)} files ok" + ("" if tshark else " (tshark not installed)"))


async def generate(out_dir: str, only: set[str] | None, keep_going: bool) -> int:
    versions = tool_versions()
    resolve_ports()
    workdir = tempfile.mkdtemp(prefix="wsctl-captures-")
    produced = []
    failed = []
    try:
        for spec in specs():
            if only and spec.name not in only:
                continue
            for attempt in range(1, ATTEMPTS + 1):
                log(f"capturing {spec.name} ..." + (f" (attempt {attempt})" if attempt > 1 else ""))
                try:
                    await run_capture(spec, workdir, versions)
                    produced.append(spec.name)
                    break
                except Exception as error:  # noqa: BLE001 - reported, retried, then fatal unless --keep-going
                    log(f"  failed: {type(error).__name__}: {error}")
                    await asyncio.sleep(0.5)
            else:
                failed.append(spec.name)
                if not keep_going:
                    return 1
        for name, source, make in PERTURBED:
            if only and name not in only:
                continue
            source_pcap = os.path.join(workdir, source + ".pcap")
            if not os.path.exists(source_pcap):
                source_pcap = os.path.join(out_dir, source + ".pcap")
            source_truth = source_pcap[:-5] + ".truth.json"
            log(f"deriving {name} from {source}.pcap ...")
            with open(source_truth, encoding="utf-8") as handle:
                source_doc = json.load(handle)
            try:
                make(source_pcap, source_doc, workdir)
                produced.append(name)
            except Exception as error:  # noqa: BLE001
                failed.append(name)
                log(f"  FAILED: {type(error).__name__}: {error}")
                if not keep_going:
                    return 1
        os.makedirs(out_dir, exist_ok=True)
        if not only:
            # The second -i any capture is named after its link type: drop the other name's files.
            for stale in ("any-sll1", "any-sll2"):
                if stale not in produced:
                    for suffix in (".pcap", ".truth.json"):
                        if os.path.exists(os.path.join(out_dir, stale + suffix)):
                            os.remove(os.path.join(out_dir, stale + suffix))
        for name in produced:
            for suffix in (".pcap", ".truth.json"):
                shutil.move(os.path.join(workdir, name + suffix), os.path.join(out_dir, name + suffix))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    all_names = [s.name for s in specs()] + [p[0] for p in PERTURBED]
    names = [n for n in all_names if n in produced or not only]
    read_back(out_dir, names)
    summary(out_dir, names)
    if failed:
        log(f"not produced: {', '.join(failed)}")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=HERE, help="output directory (default: this script's directory)")
    parser.add_argument("--only", help="comma-separated capture names")
    parser.add_argument("--verify-only", action="store_true",
                        help="check the existing files against their truth instead of capturing")
    parser.add_argument("--keep-going", action="store_true", help="go on after a capture fails")
    args = parser.parse_args()
    if args.verify_only:
        return verify_only(args.out)
    if websockets is None:
        log("generate.py: Python websockets is missing: pip install websockets")
        return 2
    if int(websockets.__version__.split(".")[0]) < 13:
        log(f"generate.py: websockets {websockets.__version__} is too old (the asyncio API needs >= 13)")
        return 2
    if shutil.which("tcpdump") is None:
        log("generate.py: tcpdump is missing: apt-get install -y tcpdump")
        return 2
    only = set(args.only.split(",")) if args.only else None
    return asyncio.run(generate(args.out, only, args.keep_going))


if __name__ == "__main__":
    sys.exit(main())
