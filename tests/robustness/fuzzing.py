"""A bounded, seeded fuzzer of the signaling boundary: protocol messages and raw engine.io frames.

``fuzz(server, seconds=..., seed=...)`` drives a real in-process server with:

- **protocol messages** from python-socketio clients (a joined counselor, a resident in
  the lobby, an interpreter): valid messages of every type but ``end`` and ``leave``,
  the same messages mutated (fields dropped, added, retyped, oversized, nested),
  payloads that are not objects, no payload and extra arguments;
- **raw engine.io frames** over a websocket that completed the socket.io handshake:
  mutated socket.io packets (``42[...]``), binary attachments without their
  placeholders, unknown packet types, garbage text and bytes, oversized frames;
- **long-polling garbage**: POSTs to unknown or forged engine.io sessions.

It counts what *escaped*: every log record with a traceback, every exception the
event loop saw unhandled, and every ``server_error`` reply (an exception the
server did not foresee). The same seed makes the same inputs. Used by
``tests/robustness/test_fuzz.py`` (~30 s in ``make test``) and ``bench/fuzz.py``
(longer).
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

from signaling.protocol import Role
from tests.support.server import RunningServer

_TYPES = (
    "join", "admit", "deny", "remove", "leave", "end", "answer", "ice_candidate", "mute",
    "chat", "caption_language", "record_start", "record_stop", "record_consent",
    "record_decline",
)  # fmt: skip
#: Types a valid message may have: ``end`` and ``leave`` would end the fuzzing itself.
_SAFE_TYPES = tuple(t for t in _TYPES if t not in ("end", "leave"))
_LANGS = ("ko", "en", "ja", "zh", "ru")


@dataclass
class Escapes:
    """What got past the server's boundary."""

    tracebacks: list[str] = field(default_factory=list)
    loop_exceptions: list[str] = field(default_factory=list)
    server_errors: int = 0

    @property
    def total(self) -> int:
        return len(self.tracebacks) + len(self.loop_exceptions) + self.server_errors


@dataclass
class FuzzReport:
    seed: int
    seconds: float
    messages: int = 0
    frames: int = 0
    polls: int = 0
    reconnects: int = 0
    replies: collections.Counter[str] = field(default_factory=collections.Counter)
    escapes: Escapes = field(default_factory=Escapes)
    log_lines: int = 0

    def summary(self) -> str:
        codes = ", ".join(f"{k} {v}" for k, v in sorted(self.replies.items()))
        return (
            f"seed {self.seed}: {self.seconds:.1f} s, {self.messages} protocol messages, "
            f"{self.frames} raw engine.io frames, {self.polls} polling requests, "
            f"{self.reconnects} reconnects; error replies: {codes or 'none'}; "
            f"log lines {self.log_lines}; escaped: {len(self.escapes.tracebacks)} tracebacks, "
            f"{len(self.escapes.loop_exceptions)} unhandled in the loop, "
            f"{self.escapes.server_errors} server_error replies"
        )


class _Recorder(logging.Handler):
    def __init__(self, escapes: Escapes) -> None:
        super().__init__(logging.DEBUG)
        self.escapes = escapes
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.INFO:
            return
        self.lines += 1
        if record.exc_info:
            self.escapes.tracebacks.append(f"{record.name}: {record.getMessage()}")


# ------------------------------------------------------------------ generators
def _text(rng: random.Random, limit: int = 40) -> str:
    alphabet = string.printable + "한국어日本語中文русский\u0000\u202e\ud7ff\U0001f600"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, limit)))


def _scalar(rng: random.Random) -> Any:
    return rng.choice([
        None, True, False, 0, -1, 2**63, 2**70, 1.5, float("1e308"), "", _text(rng),
        "x" * rng.choice([10, 2_001, 70_000]), [], {}, [None], {"type": "join"},
    ])  # fmt: skip


def _value(rng: random.Random, depth: int = 0) -> Any:
    if depth > 3 or rng.random() < 0.6:
        return _scalar(rng)
    if rng.random() < 0.5:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_text(rng, 8): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _candidate(rng: random.Random) -> str:
    fields = ["candidate:1", "1", "udp", "2122260223", "127.0.0.1", str(rng.randint(0, 70000)),
              "typ", rng.choice(["host", "srflx", "relay", "bogus"])]  # fmt: skip
    if rng.random() < 0.5:
        fields = fields[: rng.randint(0, len(fields))]
    if fields and rng.random() < 0.3:
        fields[rng.randrange(len(fields))] = _text(rng, 12)
    return " ".join(fields)


def _sdp(rng: random.Random) -> str:
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0",
             "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:0",
             "a=ice-ufrag:abcd", "a=ice-pwd:" + "p" * 22,
             "a=fingerprint:sha-256 " + ":".join(["AB"] * 32), "a=setup:active",
             "a=rtpmap:111 opus/48000/2", "a=sendrecv"]  # fmt: skip
    rng.shuffle(lines) if rng.random() < 0.3 else None
    if rng.random() < 0.5:
        del lines[rng.randrange(len(lines))]
    if rng.random() < 0.3:
        lines.insert(rng.randrange(len(lines)), _text(rng, 60))
    return "\r\n".join(lines) + "\r\n"


def valid_message(rng: random.Random, participant_ids: list[str]) -> dict[str, Any]:
    kind = rng.choice(_SAFE_TYPES)
    someone = rng.choice([*participant_ids, "p-nobody", ""]) if participant_ids else "p-x"
    build: dict[str, Callable[[], dict[str, Any]]] = {
        "admit": lambda: {"participant_id": someone},
        "deny": lambda: {"participant_id": someone, "reason": _text(rng, 30)},
        "remove": lambda: {"participant_id": "p-nobody", "reason": _text(rng, 30)},
        "answer": lambda: {"sdp": _sdp(rng)},
        "ice_candidate": lambda: {
            "candidate": rng.choice([None, "", _candidate(rng)]),
            "sdp_mid": rng.choice([None, "0", "1", "99"]),
            "sdp_mline_index": rng.choice([None, 0, 1, 99, -1]),
        },
        "mute": lambda: {"audio_muted": rng.random() < 0.5, "video_muted": rng.random() < 0.5},
        "chat": lambda: {"text": _text(rng, 200) or "hi"},
        "caption_language": lambda: {"language": rng.choice(_LANGS)},
    }
    return {"type": kind, **build.get(kind, dict)()}


def mutated_message(rng: random.Random, participant_ids: list[str]) -> Any:
    roll = rng.random()
    if roll < 0.1:
        return _value(rng)  # not an object at all
    message: dict[str, Any] = valid_message(rng, participant_ids)
    if rng.random() < 0.15:
        message["type"] = rng.choice([*_TYPES, "", "JOIN", "welcome", _text(rng, 10), 7, None])
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        keys = list(message)
        if op < 0.3 and keys:
            del message[rng.choice(keys)]
        elif op < 0.6 and keys:
            message[rng.choice(keys)] = _value(rng)
        else:
            message[rng.choice([_text(rng, 8), "sdp", "candidate", "participant_id"])] = _value(rng)
    if message.get("type") in ("end", "leave"):
        message["extra"] = 1  # keep it invalid: valid ones would end the fuzzing
    return message


def raw_frame(rng: random.Random) -> str | bytes:
    """One websocket frame for an engine.io (v4) connection, mostly wrong."""
    roll = rng.random()
    if roll < 0.35:
        payload = rng.choice([
            ["message", mutated_message(rng, [])],
            ["message"],
            ["message", {"type": "chat", "text": "x"}, "extra", 1],
            [_value(rng), _value(rng)],
            [],
            _value(rng),
        ])  # fmt: skip
        try:
            body = json.dumps(payload)
        except ValueError:
            body = "[]"
        if rng.random() < 0.3:
            cut = rng.randrange(len(body) + 1)
            body = body[:cut] + _text(rng, 5) + body[cut:]
        prefix = rng.choice(["42", "42/", "42/admin,", "4212", "43", "41", "40", "44", "45"])
        return prefix + body
    if roll < 0.5:
        n = rng.randint(0, 3)
        placeholder = {"_placeholder": True, "num": rng.randint(-1, 5)}
        return f"45{n}-" + json.dumps(["message", placeholder])
    if roll < 0.6:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
    if roll < 0.7:
        return rng.choice(["2", "3", "5", "6", "1", "0", "7", "9", "2probe", "3probe", "4"])
    if roll < 0.75:
        return "42" + json.dumps(["message", {"type": "chat", "text": "x" * 300_000}])
    if roll < 0.8:
        return "4" + str(rng.randint(0, 9)) + "9" * rng.randint(1, 40) + "[]"
    return _text(rng, 80)


# ------------------------------------------------------------------ clients
class _Peer:
    """A python-socketio client holding a seat; it reconnects when dropped."""

    def __init__(self, server: RunningServer, room_id: str, token: str, report: FuzzReport):
        self.server, self.room_id, self.token, self.report = server, room_id, token, report
        self.sio: socketio.AsyncClient | None = None
        self.you: str | None = None

    async def _message(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "welcome":
            self.you = data["you"]["id"]
        if kind == "error":
            self.report.replies[data["code"]] += 1
            if data["code"] == "server_error":
                self.report.escapes.server_errors += 1

    async def ensure(self) -> socketio.AsyncClient:
        if self.sio is not None and self.sio.connected:
            return self.sio
        if self.sio is not None:
            self.report.reconnects += 1
            await self.sio.disconnect()
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("message", self._message)
        await self.sio.connect(
            self.server.base_url,
            auth={"token": self.token, "room": self.room_id},
            transports=["websocket"],
            wait_timeout=10,
        )
        await self.sio.emit("message", {"type": "join"})
        return self.sio

    async def close(self) -> None:
        if self.sio is not None and self.sio.connected:
            await self.sio.disconnect()


async def _raw_session(
    http: aiohttp.ClientSession, base_url: str, token: str, room_id: str
) -> aiohttp.ClientWebSocketResponse:
    url = base_url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    ws = await http.ws_connect(url)
    await asyncio.wait_for(ws.receive(), 5)  # the engine.io open packet
    await ws.send_str("40" + json.dumps({"token": token, "room": room_id}))
    return ws


async def _drain(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read what the server sends (answering pings) until the socket closes."""
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT and msg.data == "2":
            await ws.send_str("3")


async def fuzz(
    server: RunningServer, *, seconds: float, seed: int, max_inputs: int = 1_000_000
) -> FuzzReport:
    """Fuzz ``server`` for about ``seconds`` (at most ``max_inputs`` inputs); what escaped."""
    rng = random.Random(seed)
    report = FuzzReport(seed=seed, seconds=0.0)
    recorder = _Recorder(report.escapes)
    root = logging.getLogger()
    root.addHandler(recorder)
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def on_loop_exception(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        where = context.get("task") or context.get("future") or context.get("handle")
        report.escapes.loop_exceptions.append(
            f"{context.get('message')}: {context.get('exception')!r} in {where!r}"[:2000]
        )

    loop.set_exception_handler(on_loop_exception)
    room_id, tokens = await server.room_with(
        (Role.COUNSELOR, "Fuzz Counselor", "ko"),
        (Role.INTERPRETER, "Fuzz Interpreter", "ja"),
        (Role.RESIDENT, "Fuzz Resident", "ja"),
        (Role.RESIDENT, "Raw Frames", "ja"),
    )
    peers = [_Peer(server, room_id, t, report) for t in tokens[:3]]
    started = time.monotonic()
    deadline = started + seconds
    drains: list[asyncio.Task[None]] = []
    try:
        async with aiohttp.ClientSession() as http:
            ws: aiohttp.ClientWebSocketResponse | None = None
            inputs = 0
            while time.monotonic() < deadline and inputs < max_inputs:
                inputs += 1
                roll = rng.random()
                if roll < 0.6:
                    peer = rng.choice(peers)
                    sio = await peer.ensure()
                    ids = [p.you for p in peers if p.you]
                    message = (
                        valid_message(rng, ids) if rng.random() < 0.3 else mutated_message(rng, ids)
                    )
                    shape = rng.random()
                    if shape < 0.05:
                        await sio.emit("message")
                    elif shape < 0.1:
                        await sio.emit("message", (message, _value(rng)))
                    else:
                        await sio.emit("message", message)
                    report.messages += 1
                elif roll < 0.95:
                    if ws is None or ws.closed:
                        if ws is not None:
                            report.reconnects += 1
                        ws = await _raw_session(http, server.base_url, tokens[3], room_id)
                        drains.append(asyncio.create_task(_drain(ws)))
                    frame = raw_frame(rng)
                    try:
                        if isinstance(frame, bytes):
                            await ws.send_bytes(frame)
                        else:
                            await ws.send_str(frame)
                    except (ConnectionError, RuntimeError):
                        pass  # the server closed it: the next frame opens a new one
                    report.frames += 1
                else:
                    sid = rng.choice(["", "bogus", _text(rng, 20)])
                    body = raw_frame(rng)
                    async with http.post(
                        server.base_url + "/socket.io/",
                        params={
                            "EIO": rng.choice(["4", "3", "x"]),
                            "transport": "polling",
                            "sid": sid,
                        },
                        data=body if isinstance(body, bytes) else body.encode(),
                    ) as resp:
                        await resp.read()
                        assert resp.status < 500, (resp.status, body)
                    report.polls += 1
                if inputs % 20 == 0:
                    await asyncio.sleep(0.01)  # let the server answer
            if ws is not None:
                await ws.close()
        await asyncio.sleep(0.5)  # replies still on their way
    finally:
        for task in drains:
            task.cancel()
        await asyncio.gather(*drains, return_exceptions=True)
        for peer in peers:
            await peer.close()
        loop.set_exception_handler(previous)
        root.removeHandler(recorder)
        report.log_lines = recorder.lines
        report.seconds = time.monotonic() - started
    return report
