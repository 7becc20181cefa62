#!/usr/bin/env python3
"""A plan-driven Python `websockets` client for `wsctl serve --script` tests: several named
connections, driven step by step in one process, so a test can say "a joins, b joins, a sends, c
must not hear it".

    python3 script_client.py URL PLAN_JSON

PLAN_JSON is {"steps": [...], "deadline": seconds (default 40)}. Steps run in order; each names the
connection it acts on ("a", "b", ...):

  {"open": "a", "path": "/x?y=1", "headers": [["Name", "value"], ...], "subprotocols": [...],
   "compression": false}          connect (a refused upgrade is recorded as "status")
  {"send": "a", "text": "..."}     a text message
  {"send": "a", "json": {...}}     a text message holding that JSON
  {"send": "a", "hex": "00ff"}     a binary message
  {"send": "a", "parts": [...]}    one text message sent as several frames
  {"recv": "a", "n": 1}            wait for n messages
  {"recv_until": "a", "prefix": "v2 "}   wait for messages until a text one starts with prefix
  {"drain": "a", "quiet": 0.3}     every message that arrives before quiet seconds pass without one
  {"wait_close": "a"}              wait for the connection to close (messages before it are recorded)
  {"close": "a", "code": 1000, "reason": ""}   close from the client
  {"sleep": seconds}
  {"pause": "label"}               print "PAUSE label" and wait for a line on stdin (the test does
                                   something to the server meanwhile: SIGHUP, an edited script)

Every wait takes "timeout" (default 5 s); a wait that times out ends the plan with an error that
shows what each connection got so far. Prints one JSON object:

  {"conns": {"a": {"opened": true, "status": null, "subprotocol": ..., "extensions": ...,
                   "local": "127.0.0.1:PORT", "sent": [{"t": seconds}],
                   "messages": [{"type": "text", "text": ..., "t": seconds} |
                                {"type": "binary", "hex": ..., "length": n, "t": seconds}],
                   "close": {"rcvd": code, "rcvd_reason": ..., "sent": code, "sent_reason": ...,
                             "by": "server" | "client" | "none"} | null}}}

Times are seconds since the plan started; a message's "t" is when the plan took it, which is when
it arrived only if the plan was waiting for it then (a recv, recv_until, drain or wait_close step).
"""

import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

START = time.monotonic()


def now():
    return round(time.monotonic() - START, 4)


class Failure(Exception):
    pass


def record(message):
    if isinstance(message, str):
        return {"type": "text", "text": message, "t": now()}
    return {"type": "binary", "hex": message.hex() if len(message) <= 4096 else None, "length": len(message), "t": now()}


def close_facts(ws):
    """The closing handshake as the client saw it; "by" is the side whose close frame came first."""
    p = ws.protocol
    rcvd, sent = p.close_rcvd, p.close_sent
    by = "server" if p.close_rcvd_then_sent else "client" if sent else "none"
    return {
        "rcvd": rcvd.code if rcvd else None,
        "rcvd_reason": rcvd.reason if rcvd else None,
        "sent": sent.code if sent else None,
        "sent_reason": sent.reason if sent else None,
        "by": by,
    }


class Plan:
    def __init__(self, url):
        self.url = url
        self.ws = {}
        self.out = {}

    def conn(self, name):
        if name not in self.ws:
            raise Failure(f"connection {name} is not open (step before its open step?)")
        return self.ws[name], self.out[name]

    async def open(self, step):
        name = step["open"]
        kw = {"open_timeout": 5, "close_timeout": 3, "ping_interval": None, "max_size": None, "proxy": None}
        if step.get("compression", True) is False:
            kw["compression"] = None
        if "headers" in step:
            kw["additional_headers"] = [tuple(h) for h in step["headers"]]
        if "subprotocols" in step:
            kw["subprotocols"] = step["subprotocols"]
        url = self.url.rstrip("/") + step.get("path", "/")
        record_ = {"opened": False, "status": None, "messages": [], "sent": [], "close": None}
        self.out[name] = record_
        try:
            ws = await connect(url, **kw)
        except InvalidStatus as error:
            record_["status"] = error.response.status_code
            return
        self.ws[name] = ws
        host, port = ws.local_address[:2]
        record_.update({
            "opened": True,
            "subprotocol": ws.subprotocol,
            "extensions": ws.response.headers.get("Sec-WebSocket-Extensions"),
            "local": f"{host}:{port}",
        })

    async def receive(self, name, timeout):
        """One message, or None when the connection closed (recorded)."""
        ws, rec = self.conn(name)
        if rec["close"] is not None:
            return None
        try:
            m = record(await asyncio.wait_for(ws.recv(), timeout))
        except ConnectionClosed:
            rec["close"] = close_facts(ws)
            return None
        rec["messages"].append(m)
        return m

    def timed_out(self, what):
        summary = {n: [m.get("text") or m.get("hex") for m in r["messages"]] for n, r in self.out.items()}
        return Failure(f"{what}: timed out; received so far: {json.dumps(summary)[:2000]}")

    async def step(self, step):
        timeout = step.get("timeout", 5)
        if "open" in step:
            await self.open(step)
        elif "send" in step:
            ws, rec = self.conn(step["send"])
            if "text" in step:
                data = step["text"]
            elif "json" in step:
                data = json.dumps(step["json"])
            elif "hex" in step:
                data = bytes.fromhex(step["hex"])
            else:
                data = step["parts"]
            rec["sent"].append({"t": now()})
            try:
                await ws.send(data)
            except ConnectionClosed:
                rec["sent"][-1]["failed"] = True
        elif "recv" in step:
            name = step["recv"]
            for i in range(step.get("n", 1)):
                try:
                    m = await self.receive(name, timeout)
                except (asyncio.TimeoutError, TimeoutError):
                    raise self.timed_out(f"recv {name} (message {i + 1} of {step.get('n', 1)})")
                if m is None:
                    raise Failure(f"recv {name}: closed {json.dumps(self.out[name]['close'])} after "
                                  f"{json.dumps(self.out[name]['messages'])[:2000]}")
        elif "recv_until" in step:
            name = step["recv_until"]
            while True:
                try:
                    m = await self.receive(name, timeout)
                except (asyncio.TimeoutError, TimeoutError):
                    raise self.timed_out(f"recv_until {name} {step['prefix']!r}")
                if m is None:
                    raise Failure(f"recv_until {name}: closed {json.dumps(self.out[name]['close'])}")
                if m["type"] == "text" and m["text"].startswith(step["prefix"]):
                    break
        elif "drain" in step:
            name = step["drain"]
            deadline = time.monotonic() + step.get("max", 10)
            while time.monotonic() < deadline:
                try:
                    if await self.receive(name, step.get("quiet", 0.3)) is None:
                        break
                except (asyncio.TimeoutError, TimeoutError):
                    break
        elif "wait_close" in step:
            name = step["wait_close"]
            deadline = time.monotonic() + timeout
            while True:
                try:
                    if await self.receive(name, max(0.01, deadline - time.monotonic())) is None:
                        break
                except (asyncio.TimeoutError, TimeoutError):
                    raise self.timed_out(f"wait_close {name}")
        elif "close" in step:
            ws, rec = self.conn(step["close"])
            await ws.close(step.get("code", 1000), step.get("reason", ""))
            if rec["close"] is None:
                rec["close"] = close_facts(ws)
        elif "sleep" in step:
            await asyncio.sleep(step["sleep"])
        elif "pause" in step:
            print(f"PAUSE {step['pause']}", flush=True)
            line = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline), 20)
            if not line:
                raise Failure(f"pause {step['pause']}: stdin closed")
        else:
            raise Failure(f"unknown step {json.dumps(step)}")

    async def run(self, steps):
        try:
            for step in steps:
                await self.step(step)
        finally:
            for ws in self.ws.values():
                await ws.close()
        return {"conns": self.out}


def main():
    url, plan = sys.argv[1], json.loads(sys.argv[2])
    runner = Plan(url)
    try:
        result = asyncio.run(asyncio.wait_for(runner.run(plan["steps"]), plan.get("deadline", 40)))
    except Exception as error:  # reported to the Swift test, which fails with it
        result = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
