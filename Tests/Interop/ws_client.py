#!/usr/bin/env python3
"""Python `websockets` clients for `wsctl serve` interoperability tests.

    python3 ws_client.py URL SCENARIO [OPTIONS_JSON]

Prints one JSON object on stdout: what the client saw, for the Swift test to check. A scenario that
raises prints {"error": "..."} instead. Every wait has a timeout. Options common to all scenarios:

  compression   false: do not offer permessage-deflate (default: offer it, as websockets does)
  origin        an Origin header
  headers       extra request headers, {"name": "value"}
  subprotocols  subprotocols to offer
  cafile        a PEM file to trust, for wss:// URLs
  deadline      seconds the whole scenario may take (default 30)

Requires websockets 15 or later (the asyncio implementation with the `proxy` option).
"""

import asyncio
import hashlib
import json
import os
import signal
import ssl
import sys
import time

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

import rawws


def connect_kwargs(opts):
    kw = {
        "open_timeout": 5,
        "close_timeout": 3,
        "ping_interval": None,  # the tests decide when pings happen
        "max_size": None,
        "proxy": None,
    }
    if opts.get("compression", True) is False:
        kw["compression"] = None
    if "origin" in opts:
        kw["origin"] = opts["origin"]
    if "headers" in opts:
        kw["additional_headers"] = opts["headers"]
    if "subprotocols" in opts:
        kw["subprotocols"] = opts["subprotocols"]
    if "cafile" in opts:
        kw["ssl"] = ssl.create_default_context(cafile=opts["cafile"])
    return kw


def open_ws(url, opts, **extra):
    kw = connect_kwargs(opts)
    kw.update(extra)
    return connect(url, **kw)


def handshake_facts(ws):
    headers = ws.response.headers
    return {
        "extensions": headers.get("Sec-WebSocket-Extensions"),
        "subprotocol": ws.subprotocol,
    }


def describe(message):
    if isinstance(message, str):
        return {"type": "text", "text": message}
    return {"type": "binary", "length": len(message), "hex": message.hex() if len(message) <= 4096 else None}


async def recv(ws, timeout=5):
    return await asyncio.wait_for(ws.recv(), timeout)


async def recv_json(ws, timeout=5):
    return json.loads(await recv(ws, timeout))


async def drain(ws, quiet=0.3):
    """Every message that arrives before `quiet` seconds pass without one."""
    got = []
    while True:
        try:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), quiet)))
        except (asyncio.TimeoutError, TimeoutError):
            return got


# MARK: - Echo


async def scenario_echo_text(url, opts):
    text = opts.get("text", "hello, wörld ✓")
    async with open_ws(url, opts) as ws:
        await ws.send(text)
        reply = await recv(ws)
        return {**handshake_facts(ws), "sent": text, "received": describe(reply)}


async def scenario_echo_binary(url, opts):
    data = bytes(range(256)) * 4
    async with open_ws(url, opts) as ws:
        await ws.send(data)
        reply = await recv(ws)
        return {**handshake_facts(ws), "sent_hex": data.hex(), "received": describe(reply)}


async def scenario_echo_large(url, opts):
    size = opts.get("size", 16 << 20)
    data = os.urandom(size)
    async with open_ws(url, opts) as ws:
        start = time.monotonic()
        await ws.send(data)
        reply = await recv(ws, timeout=opts.get("timeout", 20))
        return {
            **handshake_facts(ws),
            "type": "binary" if isinstance(reply, bytes) else "text",
            "length": len(reply),
            "equal": reply == data,
            "sha256_sent": hashlib.sha256(data).hexdigest(),
            "sha256_received": hashlib.sha256(reply if isinstance(reply, bytes) else reply.encode()).hexdigest(),
            "seconds": time.monotonic() - start,
        }


async def scenario_fragments(url, opts):
    text_parts = ["Frag", "mented ", "wörld ✓"]
    binary_parts = [b"\x00\x01", b"\x02\x03\x04", b"\xff"]
    async with open_ws(url, opts) as ws:
        await ws.send(text_parts)  # an iterable is sent as one fragmented message
        text = await recv(ws)
        await ws.send(binary_parts)
        binary = await recv(ws)
        return {
            **handshake_facts(ws),
            "text_sent": "".join(text_parts),
            "text": describe(text),
            "binary_sent_hex": b"".join(binary_parts).hex(),
            "binary": describe(binary),
        }


async def scenario_ping(url, opts):
    async with open_ws(url, opts) as ws:
        # websockets resolves the waiter only for a pong carrying this ping's payload.
        waiter = await ws.ping(b"wsctl-interop")
        latency = await asyncio.wait_for(waiter, 5)
        await ws.send("still open")
        after = await recv(ws)
        return {"pong": True, "latency": latency, "after": describe(after)}


async def scenario_close(url, opts):
    code, reason = opts["code"], opts.get("reason", "bye")
    async with open_ws(url, opts) as ws:
        await ws.send("before close")
        await recv(ws)
        await ws.close(code, reason)
        rcvd = ws.protocol.close_rcvd
        return {
            "sent_code": code,
            "received_code": rcvd.code if rcvd else None,
            "received_reason": rcvd.reason if rcvd else None,
        }


async def scenario_concurrent(url, opts):
    clients, count = opts.get("clients", 20), opts.get("messages", 50)

    async def one(i):
        async with open_ws(url, opts) as ws:
            sent = [f"client {i} message {j}" if j % 2 == 0 else f"client {i} message {j}".encode() for j in range(count)]
            for m in sent:
                await ws.send(m)
            got = [await recv(ws, 10) for _ in sent]
            return sum(1 for a, b in zip(sent, got) if a == b and type(a) is type(b))

    results = await asyncio.gather(*(one(i) for i in range(clients)), return_exceptions=True)
    errors = [repr(r) for r in results if isinstance(r, BaseException)]
    echoed = [r for r in results if not isinstance(r, BaseException)]
    return {"clients_ok": sum(1 for r in echoed if r == count), "echoed": sum(echoed), "errors": errors}


# MARK: - Broadcast


async def scenario_broadcast(url, opts):
    n = opts.get("clients", 5)
    clients = [await open_ws(url, opts) for _ in range(n)]
    try:
        await asyncio.sleep(0.05)
        for i, ws in enumerate(clients):
            await ws.send(f"from {i}")
        expected = n - 1 if opts.get("no_echo_self") else n

        async def collect(ws):
            got = []
            try:
                while len(got) < expected:
                    got.append(await recv(ws))
                got.append(await recv(ws, 0.3))  # anything more is wrong
            except (asyncio.TimeoutError, TimeoutError):
                pass
            return sorted(got)

        received = await asyncio.gather(*(collect(ws) for ws in clients))
        return {"received": received}
    finally:
        for ws in clients:
            await ws.close()


# MARK: - Policies


async def scenario_expect_close(url, opts):
    """Connects, sends OPTIONS.send_text / send_binary_sizes / send_zeros, and reads until the server closes."""
    try:
        ws = await open_ws(url, opts)
    except InvalidStatus as error:
        response = error.response
        return {"opened": False, "status": response.status_code, "body": response.body.decode("utf-8", "replace")}
    start = time.monotonic()
    messages = []
    send_error = None
    try:
        for text in opts.get("send_text", []):
            await ws.send(text)
        for size in opts.get("send_binary_sizes", []):
            await ws.send(os.urandom(size))
        for size in opts.get("send_zeros", []):
            await ws.send(bytes(size))
    except ConnectionClosed as error:
        send_error = repr(error)
    closed = True
    try:
        while True:
            messages.append(describe(await recv(ws, opts.get("timeout", 5))))
    except ConnectionClosed:
        pass
    except (asyncio.TimeoutError, TimeoutError):
        closed = False
    elapsed = time.monotonic() - start
    rcvd = ws.protocol.close_rcvd
    await ws.close()
    return {
        "opened": True,
        **handshake_facts(ws),
        "messages": messages,
        "closed": closed,
        "close_code": rcvd.code if rcvd else None,
        "close_reason": rcvd.reason if rcvd else None,
        "elapsed": elapsed,
        "send_error": send_error,
    }


async def scenario_max_connections(url, opts):
    hold = opts.get("hold", 2)
    held = [await open_ws(url, opts) for _ in range(hold)]
    result = {"held": len(held)}
    try:
        try:
            extra = await open_ws(url, opts)
            result["extra_opened"] = True
            await extra.close()
        except InvalidStatus as error:
            result["extra_opened"] = False
            result["extra_status"] = error.response.status_code
            result["extra_body"] = error.response.body.decode("utf-8", "replace")
        echoes = []
        for ws in held:
            await ws.send("still here")
            echoes.append(await recv(ws))
        result["held_echoes"] = echoes
        # Once one leaves, a newcomer fits again (the server may take a moment to notice).
        await held.pop().close()
        deadline = time.monotonic() + 3
        result["after_leave_opened"] = False
        while time.monotonic() < deadline:
            try:
                newcomer = await open_ws(url, opts)
                result["after_leave_opened"] = True
                await newcomer.close()
                break
            except InvalidStatus:
                await asyncio.sleep(0.05)
        return result
    finally:
        for ws in held:
            await ws.close()


async def scenario_slow_consumer(url, opts):
    """A raw client that never reads while a sender pushes OPTIONS.count messages of OPTIONS.size
    bytes through a broadcast server; a second websockets client reads everything. The sender waits
    until both the reader and itself (the broadcast includes the sender) have each message before it
    sends the next, so only the raw client falls behind. With OPTIONS.pause, prints "SENT" after the
    burst and waits for a line on stdin before the raw client reads what was queued for it."""
    count, size = opts.get("count", 512), opts.get("size", 16 * 1024)
    slow, leftover = rawws.handshake(url, rcvbuf=opts.get("rcvbuf", 4096))
    reader = await open_ws(url, opts)
    sender = await open_ws(url, opts)
    await asyncio.sleep(0.05)
    start = time.monotonic()
    payload = os.urandom(size)
    reader_got = sender_got = 0
    for _ in range(count):
        await sender.send(payload)
        if len(await recv(reader, 10)) == size:
            reader_got += 1
        if len(await recv(sender, 10)) == size:
            sender_got += 1
    burst_seconds = time.monotonic() - start
    # The server still serves the others after dropping the slow client.
    await sender.send("after the burst")
    after_reader, after_sender = await recv(reader), await recv(sender)
    result = {
        "reader_received": reader_got,
        "sender_received": sender_got,
        "burst_seconds": burst_seconds,
        "after_burst": [describe(after_reader), describe(after_sender)],
    }
    if opts.get("pause"):
        print("SENT", flush=True)
        await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline), 15)
    # Now read what the server queued for the slow client: data, then (expected) a close frame.
    frames = rawws.FrameReader(slow, leftover)
    deadline = time.monotonic() + 10
    data_frames, data_bytes, close = 0, 0, None
    while True:
        frame = frames.next_frame(deadline)
        if frame is None:
            break
        _, opcode, payload_bytes = frame
        if opcode == 8:
            code, reason = rawws.close_payload(payload_bytes)
            close = {"code": code, "reason": reason}
            frames.next_frame(min(deadline, time.monotonic() + 2))  # the server should then close TCP
            break
        data_frames += 1
        data_bytes += len(payload_bytes)
    slow.close()
    await reader.close()
    await sender.close()
    result.update({"slow_data_frames": data_frames, "slow_data_bytes": data_bytes, "slow_close": close, "slow_eof": frames.eof})
    return result


async def scenario_sigterm(url, opts):
    """Sends OPTIONS.signal (default SIGTERM) to the server (OPTIONS.pid) while connected, and
    reports the close it gets."""
    async with open_ws(url, opts) as ws:
        await ws.send("before shutdown")
        echo = await recv(ws)
        start = time.monotonic()
        os.kill(opts["pid"], signal.Signals[opts.get("signal", "SIGTERM")])
        try:
            extra = await recv(ws, 10)
            return {"error": f"unexpected message {describe(extra)}"}
        except ConnectionClosed:
            pass
        rcvd = ws.protocol.close_rcvd
        return {
            "echo": describe(echo),
            "close_code": rcvd.code if rcvd else None,
            "close_reason": rcvd.reason if rcvd else None,
            "elapsed": time.monotonic() - start,
        }


# MARK: - Rooms


async def greeted(url, opts):
    ws = await open_ws(url, opts)
    hello = await recv_json(ws)
    return ws, hello


def envelope(type_, payload, correlation_id=None):
    e = {"type": type_, "payload": payload}
    if correlation_id:
        e["metadata"] = {"correlation_id": correlation_id}
    return json.dumps(e)


async def joined(url, opts, room):
    ws, hello = await greeted(url, opts)
    await ws.send(envelope("join_room", {"room": room}))
    reply = await recv_json(ws)
    return ws, hello, reply


async def scenario_rooms_connect(url, opts):
    ws, hello = await greeted(url, opts)
    other, other_hello = await greeted(url, opts)
    await ws.close()
    await other.close()
    return {"hello": hello, "other_hello": other_hello}


async def scenario_rooms_join(url, opts):
    a, a_hello, a_join = await joined(url, opts, "r1")
    b, b_hello = await greeted(url, opts)
    await b.send(envelope("join_room", {"room": "r1"}, "join-b"))
    b_join = await recv_json(b)
    a_after = await drain(a)
    b_after = await drain(b)
    for ws in (a, b):
        await ws.close()
    return {
        "a_id": a_hello["payload"]["client_id"], "b_id": b_hello["payload"]["client_id"],
        "a_join": a_join, "b_join": b_join, "a_after": a_after, "b_after": b_after,
    }


async def scenario_rooms_message(url, opts):
    a, a_hello, _ = await joined(url, opts, "r1")
    b, b_hello, _ = await joined(url, opts, "r1")
    c, c_hello, _ = await joined(url, opts, "r2")
    await drain(a, 0.2)
    await a.send(envelope("message", {"room": "r1", "content": "hi room"}, "corr-msg"))
    results = {"a_id": a_hello["payload"]["client_id"]}
    for name, ws in (("a", a), ("b", b), ("c", c)):
        results[name] = await drain(ws)
    for ws in (a, b, c):
        await ws.close()
    return results


async def scenario_rooms_typing(url, opts):
    a, a_hello, _ = await joined(url, opts, "r1")
    b, b_hello, _ = await joined(url, opts, "r1")
    await drain(a, 0.2)
    await a.send(envelope("typing_start", {"room": "r1"}, "corr-typing"))
    results = {"a_id": a_hello["payload"]["client_id"], "a": await drain(a), "b": await drain(b)}
    for ws in (a, b):
        await ws.close()
    return results


async def scenario_rooms_leave(url, opts):
    a, a_hello, _ = await joined(url, opts, "r1")
    b, b_hello, _ = await joined(url, opts, "r1")
    await drain(a, 0.2)
    await b.send(envelope("leave_room", {"room": "r1"}, "corr-leave"))
    b_reply = await recv_json(b)
    a_after = await drain(a)
    await a.send(envelope("message", {"room": "r1", "content": "after leave"}))
    a_echo = await drain(a)
    b_after = await drain(b)
    for ws in (a, b):
        await ws.close()
    return {
        "b_id": b_hello["payload"]["client_id"], "b_reply": b_reply, "a_after": a_after,
        "a_echo": a_echo, "b_after": b_after,
    }


async def scenario_rooms_ping(url, opts):
    ws, _ = await greeted(url, opts)
    await ws.send(envelope("ping", {"t": 42}, "corr-ping-1"))
    reply = await recv_json(ws)
    await ws.close()
    return {"reply": reply}


async def scenario_rooms_malformed(url, opts):
    ws, _ = await greeted(url, opts)
    replies = []
    for text in ["this is not json", json.dumps({"type": "join_room", "payload": {}, "metadata": {"correlation_id": "corr-bad"}})]:
        await ws.send(text)
        replies.append(await recv_json(ws))
    await ws.send(envelope("ping", {}, "corr-after"))
    after = await recv_json(ws)
    rcvd = ws.protocol.close_rcvd
    await ws.close()
    return {"replies": replies, "after": after, "closed_by_server": rcvd is not None}


SCENARIOS = {name[len("scenario_"):]: f for name, f in globals().items() if name.startswith("scenario_")}


def main():
    url, name = sys.argv[1], sys.argv[2]
    opts = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    try:
        result = asyncio.run(asyncio.wait_for(SCENARIOS[name](url, opts), opts.get("deadline", 30)))
    except Exception as error:  # reported to the test, which shows it
        result = {"error": f"{type(error).__name__}: {error}"}
    result["websockets_version"] = websockets.version.version
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
