#!/usr/bin/env python3
"""Peers for the proxy's interop tests, written with Python's `websockets` (10.x), an RFC 6455 /
RFC 7692 implementation independent of `ws`: nothing here shares code with the proxy's tests.

  python-websockets.py server CONFIG
      An echo server on 127.0.0.1, port 0. Prints "PORT <n>" once listening, then one JSON line
      per connection once it has closed (see `report`). Each message is sent back with its type,
      whole, or on the path /fragmented in up to 5 frames cut anywhere (inside a character too).
      The text "CMD close <code> [reason]" makes it close the connection with that code and reason.
      "CMD raw <opcode> <hex>" makes it send that frame unchecked, as the client's "frames" step.
      CONFIG: {"deflate": null | keyword arguments of ServerPerMessageDeflateFactory}.

  python-websockets.py client URL SCENARIO
      Connects, runs SCENARIO's steps in order, closes (1000 unless a step closed already) and
      prints one JSON line: what it received, the negotiated extensions, the close frames seen.
      Exits 1 (the line then has "error") when a step fails or the whole run exceeds "timeout".
      SCENARIO: {"deflate": null | keyword arguments of ClientPerMessageDeflateFactory,
                 "timeout": seconds (default 10), "steps": [step, ...]}, a step being one of
        {"send": str}                text message          {"send_hex": hex}      binary message
        {"send_pattern": [type, n]}  n bytes of `pattern`  {"recv": n}            receive n messages
        {"fragments": [str, ...]}    one text message, a frame per item (the library's fragmentation)
        {"fragments_hex": [hex, ...]} the same, binary
        {"frames": [[opcode, hex], ...]}  raw frames ("text", "binary", "cont", "ping", "pong",
                                     "close"), FIN on control frames and on the last: through the
                                     library's framing and its deflate, but with no check of the
                                     payload, so they can split a character, carry invalid UTF-8 or
                                     a close code no endpoint may send
        {"ping": hex}                ping, and wait for its pong
        {"close": [code, reason]}    start the closing handshake
        {"wait_closed": true}        wait until the peer has closed the connection
"""
import asyncio
import hashlib
import json
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory
from websockets.frames import CTRL_OPCODES, Opcode

# Both ends take messages of the tests' largest size (1 MiB + 1) with room to spare.
MAX_SIZE = 4 << 20
OPCODES = {name.lower(): opcode for name, opcode in Opcode.__members__.items()}


def pattern(kind, size):
    """The payload of `send_pattern` (the spec builds the same bytes): letters for text, a byte ramp for binary."""
    if kind == "text":
        return "".join(chr(97 + i % 26) for i in range(size))
    return bytes(i * 7 % 256 for i in range(size))


class Watch:
    """Stands in for the negotiated extensions to count, before they inflate anything, the messages
    received and those that came compressed (RSV1 on their first frame, RFC 7692 section 6)."""

    name = "watch"

    def __init__(self, extensions, counts):
        self.extensions = extensions
        self.counts = counts

    def decode(self, frame, *, max_size=None):
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self.counts["messages"] += 1
            self.counts["compressed"] += 1 if frame.rsv1 else 0
        for extension in reversed(self.extensions):
            frame = extension.decode(frame, max_size=max_size)
        return frame

    def encode(self, frame):
        for extension in self.extensions:
            frame = extension.encode(frame)
        return frame


def watch(ws):
    """Counts what `ws` receives from now on. The list is changed in place: a read already waiting
    for a frame holds this same list, and reaches the extensions only once the frame is in."""
    counts = {"messages": 0, "compressed": 0}
    ws.extensions[:] = [Watch(list(ws.extensions), counts)]
    return counts


def close_of(close):
    return None if close is None else {"code": close.code, "reason": close.reason}


def report(ws, counts):
    """What a connection saw: its negotiated extensions, its counts, the close frames it got and sent."""
    return {
        "extensions": ws.response_headers.get("Sec-WebSocket-Extensions"),
        **counts,
        "closeReceived": close_of(ws.close_rcvd),
        "closeSent": close_of(ws.close_sent),
    }


def described(message):
    """A received message for the report: its type, size and digest, and small payloads in full."""
    data = message.encode() if isinstance(message, str) else message
    entry = {"type": "text" if isinstance(message, str) else "binary", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if isinstance(message, str) and len(data) <= 4096:
        entry["text"] = message
    if isinstance(message, bytes) and len(data) <= 256:
        entry["hex"] = data.hex()
    return entry


async def send_back(ws, message):
    if ws.path != "/fragmented":
        return await ws.send(message)
    # write_frame(): the library's send() fragments only between whole items, and text by characters
    data = message.encode() if isinstance(message, str) else message
    size = max(1, -(-len(data) // 5))
    chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    opcode = Opcode.TEXT if isinstance(message, str) else Opcode.BINARY
    for i, chunk in enumerate(chunks):
        await ws.write_frame(i == len(chunks) - 1, opcode if i == 0 else Opcode.CONT, chunk)


async def echo(ws):
    counts = watch(ws)
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("CMD close "):
                parts = message.split(" ", 3)
                await ws.close(int(parts[2]), parts[3] if len(parts) > 3 else "")
                break
            if isinstance(message, str) and message.startswith("CMD raw "):
                _, _, opcode, data = message.split(" ")
                await ws.write_frame(True, OPCODES[opcode], bytes.fromhex(data))
                continue
            await send_back(ws, message)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    print(json.dumps({"path": ws.path, **report(ws, counts)}), flush=True)


async def serve(config):
    deflate = config.get("deflate")
    extensions = None if deflate is None else [ServerPerMessageDeflateFactory(**deflate)]
    async with websockets.serve(
        echo, "127.0.0.1", 0, compression=None, extensions=extensions, max_size=MAX_SIZE, ping_interval=None, close_timeout=2
    ) as server:
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()  # until killed


async def step(ws, action, result):
    kind, arg = next(iter(action.items()))
    if kind == "send":
        await ws.send(arg)
    elif kind == "send_hex":
        await ws.send(bytes.fromhex(arg))
    elif kind == "send_pattern":
        await ws.send(pattern(*arg))
    elif kind == "fragments":
        await ws.send(list(arg))
    elif kind == "fragments_hex":
        await ws.send([bytes.fromhex(part) for part in arg])
    elif kind == "frames":
        for i, (name, data) in enumerate(arg):
            opcode = OPCODES[name]
            await ws.write_frame(i == len(arg) - 1 or opcode in CTRL_OPCODES, opcode, bytes.fromhex(data))
    elif kind == "ping":
        await (await ws.ping(bytes.fromhex(arg)))
        result["pongs"] += 1
    elif kind == "recv":
        for _ in range(arg):
            result["received"].append(described(await ws.recv()))
    elif kind == "close":
        await ws.close(*arg)
    elif kind == "wait_closed":
        await ws.wait_closed()
    else:
        raise ValueError(f"unknown step {kind}")


async def run_client(url, scenario, result):
    deflate = scenario.get("deflate")
    extensions = None if deflate is None else [ClientPerMessageDeflateFactory(**deflate)]
    ws = await websockets.connect(
        url, compression=None, extensions=extensions, max_size=MAX_SIZE, ping_interval=None, open_timeout=5, close_timeout=2
    )
    counts = watch(ws)  # the server sends nothing before the first step
    try:
        for action in scenario["steps"]:
            await step(ws, action, result)
    finally:
        await ws.close()
        result.update(report(ws, counts))


def main(argv):
    if argv[1] == "server":
        asyncio.run(serve(json.loads(argv[2])))
        return 0
    scenario = json.loads(argv[3])
    result = {"received": [], "pongs": 0}
    try:
        asyncio.run(asyncio.wait_for(run_client(argv[2], scenario, result), scenario.get("timeout", 10)))
    except Exception as error:  # the spec reads the line, whatever went wrong
        result["error"] = repr(error)
    print(json.dumps(result), flush=True)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
