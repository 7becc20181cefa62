#!/usr/bin/env python3
"""Plain-socket clients for `wsctl serve` tests; standard library only.

    python3 raw_client.py URL SCENARIO [OPTIONS_JSON]

Prints one JSON object on stdout. Scenarios:

  http      send OPTIONS.request (a raw HTTP request; "{host}" and "{path}" are filled in) and report
            the response: {"status", "headers" (lower-case name -> [values]), "body", "closed"}
  silent    connect and send nothing; report when the server closes: {"closed", "elapsed"}
  no_pong   open a WebSocket by hand and never answer pings: {"frames": [{"opcode", "t"}], "closed", "elapsed"}
"""

import json
import socket
import sys
import time

import rawws


def scenario_http(url, opts):
    host, port, path = rawws.address(url)
    request = opts["request"].replace("{host}", f"{host}:{port}").replace("{path}", path)
    sock = rawws.connect(url)
    sock.sendall(request.encode())
    deadline = time.monotonic() + opts.get("timeout", 5)
    status, headers, body, _ = rawws.read_http_response(sock, deadline)
    closed = False
    try:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        closed = sock.recv(1) == b""
    except (socket.timeout, ConnectionResetError):
        closed = False
    sock.close()
    return {"status": status, "headers": headers, "body": body.decode("utf-8", "replace"), "closed": closed}


def scenario_silent(url, opts):
    sock = rawws.connect(url)
    start = time.monotonic()
    timeout = opts.get("timeout", 5)
    sock.settimeout(timeout)
    closed = False
    try:
        closed = sock.recv(1) == b""
    except socket.timeout:
        closed = False
    except ConnectionResetError:
        closed = True
    elapsed = time.monotonic() - start
    sock.close()
    return {"closed": closed, "elapsed": elapsed}


def scenario_no_pong(url, opts):
    sock, rest = rawws.handshake(url)
    start = time.monotonic()
    reader = rawws.FrameReader(sock, rest)
    deadline = start + opts.get("timeout", 6)
    frames = []
    while True:
        frame = reader.next_frame(deadline)
        if frame is None:
            break
        fin, opcode, payload = frame
        entry = {"opcode": opcode, "t": time.monotonic() - start}
        if opcode == 8:
            entry["code"], entry["reason"] = rawws.close_payload(payload)
        frames.append(entry)
    elapsed = time.monotonic() - start
    sock.close()
    return {"frames": frames, "closed": reader.eof, "elapsed": elapsed}


SCENARIOS = {"http": scenario_http, "silent": scenario_silent, "no_pong": scenario_no_pong}


def main():
    url, name = sys.argv[1], sys.argv[2]
    opts = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    result = SCENARIOS[name](url, opts)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
