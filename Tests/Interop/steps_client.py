#!/usr/bin/env python3
"""A step-driven Python `websockets` client for `wsctl serve` tests (--exec and others).

    python3 steps_client.py URL STEPS_JSON

STEPS_JSON is {"steps": [...], "headers": {...}, "compression": bool, "deadline": seconds}. Steps,
in order, on one connection:

  {"send": "text"}          a text message
  {"send_hex": "00ff"}      a binary message
  {"recv": N}               wait for N messages (each recorded)
  {"recv_until": "text"}    wait for messages until one equals "text"
  {"count": N}              wait for N messages, recording only how many and the last one
  {"sleep": seconds}
  {"close": code}           close with that code and wait for the handshake
  {"wait_close": seconds}   wait for the server to close (recorded as "close")

Prints {"messages": [{"type", "text"|"hex"}], "counted", "last", "close": {"code", "reason"}|null,
"status": HTTP status if the upgrade was refused, "elapsed"}. Every wait has a timeout.
"""

import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def record(m):
    if isinstance(m, str):
        return {"type": "text", "text": m}
    return {"type": "binary", "hex": m.hex()}


async def run(url, opts):
    out = {"messages": [], "close": None, "counted": 0, "last": None}
    kw = {"open_timeout": 5, "close_timeout": 3, "ping_interval": None, "max_size": None, "proxy": None}
    if opts.get("compression", True) is False:
        kw["compression"] = None
    if "headers" in opts:
        kw["additional_headers"] = opts["headers"]
    start = time.monotonic()
    try:
        ws = await connect(url, **kw)
    except InvalidStatus as e:
        out["status"] = e.response.status_code
        return out
    try:
        for step in opts["steps"]:
            if "send" in step:
                await ws.send(step["send"])
            elif "send_hex" in step:
                await ws.send(bytes.fromhex(step["send_hex"]))
            elif "recv" in step:
                for _ in range(step["recv"]):
                    out["messages"].append(record(await asyncio.wait_for(ws.recv(), step.get("timeout", 10))))
            elif "recv_until" in step:
                while True:
                    m = record(await asyncio.wait_for(ws.recv(), step.get("timeout", 10)))
                    out["messages"].append(m)
                    if m.get("text") == step["recv_until"]:
                        break
            elif "count" in step:
                for _ in range(step["count"]):
                    out["last"] = record(await asyncio.wait_for(ws.recv(), step.get("timeout", 10)))
                    out["counted"] += 1
            elif "sleep" in step:
                await asyncio.sleep(step["sleep"])
            elif "close" in step:
                await ws.close(step["close"])
                out["close"] = {"code": ws.close_code, "reason": ws.close_reason, "by": "client"}
            elif "wait_close" in step:
                try:
                    while True:
                        out["messages"].append(record(await asyncio.wait_for(ws.recv(), step["wait_close"])))
                except ConnectionClosed:
                    out["close"] = {"code": ws.close_code, "reason": ws.close_reason, "by": "server"}
    except ConnectionClosed:
        out["close"] = {"code": ws.close_code, "reason": ws.close_reason, "by": "server"}
    finally:
        await ws.close()
    out["elapsed"] = time.monotonic() - start
    return out


def main():
    url, opts = sys.argv[1], json.loads(sys.argv[2])
    try:
        result = asyncio.run(asyncio.wait_for(run(url, opts), opts.get("deadline", 30)))
    except Exception as e:  # reported to the Swift test, which fails with it
        result = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
