"""Benchmark clients: aiortc participants that publish pre-packetized media and count what arrives.

The same clients talk to Seoulbridge (``bench/sfu_load.py``'s server, which
drives the real ``media.sfu.MediaRoom``) and to Janus's VideoRoom
(``bench/janus_side_by_side.py``), so both servers see identical traffic.

* Publishing: VP8 640x480 at 30 fps (~1 Mb/s, encoded and packetized once up
  front) and Opus at 50 packets/s, written through ``OutboundRtp`` on the
  client's own sender, so a publisher costs little CPU. Every payload ends in an
  8-byte tag (publisher, packet number): nobody decodes, and the tag matches a
  received packet to its send time exactly (the old bench matched on a payload
  hash, which every publisher of the same loop shares).
* Subscribing: ``ReceiveHook`` sinks count video frames (marker bits) and audio
  packets per received stream and record the latency publisher send ->
  subscriber receive, both in this process.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import random
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402
from aiortc import (  # noqa: E402
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from kernel.taskset import TaskSet  # noqa: E402
from media.aiortc_internals import ReceiveHook  # noqa: E402
from media.outbound_rtp import OutboundRtp  # noqa: E402
from media.rtp_header import RtpView, abs_send_time_of, ntp_of  # noqa: E402
from media.vp8 import parse_vp8, rewrite_vp8  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 1_000_000
LOOP_FRAMES = 90  # 3 s of video, keyframe every 30 frames
TAG = struct.Struct("!II")  # (publisher index, packet number) at the end of every payload


def encode_video_loop() -> list[list[bytes]]:
    """VP8 frames, each already split into RTP payloads (aiortc's packetizer)."""
    from aiortc.codecs.vpx import Vp8Encoder

    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.framerate = fractions.Fraction(FPS)
    encoder.bit_rate = VIDEO_BITRATE
    encoder.gop_size = FPS
    encoder.options = {"deadline": "realtime", "cpu-used": "8"}
    rng = np.random.default_rng(1)
    y = np.arange(HEIGHT)[:, None]
    x = np.arange(WIDTH)[None, :]
    packets: list[bytes] = []
    for i in range(LOOP_FRAMES + 10):
        plane = ((x + y + i * 4) % 256).astype(np.uint8)
        noise = rng.integers(0, 24, size=(HEIGHT, WIDTH), dtype=np.uint8)
        rgb = np.stack([plane + noise, np.roll(plane, i, axis=0), 255 - plane], axis=2)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        packets += [bytes(p) for p in encoder.encode(frame)]
    packer = Vp8Encoder()
    frames = []
    for data in packets[:LOOP_FRAMES]:
        packet = av.Packet(data)
        packet.pts = 0
        packet.time_base = fractions.Fraction(1, 90_000)
        payloads, _ = packer.pack(packet)
        frames.append(payloads)
    return frames


def encode_audio_loop() -> list[list[bytes]]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48_000, "stereo", "s16"
    encoder.time_base = fractions.Fraction(1, 48_000)
    packets: list[bytes] = []
    for i in range(60):
        t = (np.arange(960) + i * 960) / 48_000
        tone = (np.sin(2 * np.pi * 440 * t) * 6000).astype(np.int16)
        stereo = np.repeat(tone, 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48_000, i * 960
        packets += [bytes(p) for p in encoder.encode(frame)]
    return [[p] for p in packets[:50]]


def media_loops() -> dict[str, list[list[str]]]:
    return {
        "video": [[p.hex() for p in f] for f in encode_video_loop()],
        "audio": [[p.hex() for p in f] for f in encode_audio_loop()],
    }


@dataclass
class Meter:
    """What one client process sent and received."""

    sent: dict[bytes, float] = field(default_factory=dict)
    video_ms: list[float] = field(default_factory=list)
    audio_ms: list[float] = field(default_factory=list)
    frames: dict[str, int] = field(default_factory=dict)
    audio_packets: dict[str, int] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    measuring: bool = False
    publishers: int = 0

    def sink(self, name: str, kind: str) -> Any:
        counts = self.frames if kind == "video" else self.audio_packets
        counts.setdefault(name, 0)
        self.seen.setdefault(name, 0)
        latencies = self.video_ms if kind == "video" else self.audio_ms
        sent = self.sent
        seen = self.seen

        def on_packet(packet: RtpView, arrival_ms: int) -> None:
            seen[name] += 1
            if not self.measuring:
                return
            if kind == "audio" or packet.marker:
                counts[name] += 1
            at = sent.get(packet.payload[-8:])
            if at is not None:
                latencies.append((time.perf_counter() - at) * 1000)

        return on_packet


class Publisher:
    """Sends one pre-packetized loop through ``OutboundRtp`` at its real rate."""

    def __init__(
        self,
        out: OutboundRtp,
        frames: list[list[bytes]],
        *,
        rate: int,
        step: int,
        meter: Meter,
        tasks: TaskSet,
    ) -> None:
        self._out = out
        self._frames = frames
        video = out.sender.kind == "video"
        self._descriptors = [[parse_vp8(p) if video else None for p in f] for f in frames]
        self._rate = rate
        self._step = step
        self._meter = meter
        meter.publishers += 1
        self._index = meter.publishers
        out.on_keyframe_request(lambda: None)  # the loop has a keyframe every second anyway
        tasks.spawn(self._run(), name=f"publish {self._index}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        seq = random.randrange(1 << 16)
        ts0 = random.randrange(1 << 32)
        interval = self._step / self._rate
        start = loop.time()
        n = 0
        counter = 0
        sent = self._meter.sent
        while True:
            wait = start + n * interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            payloads = self._frames[n % len(self._frames)]
            descriptors = self._descriptors[n % len(self._frames)]
            timestamp = (ts0 + n * self._step) % (1 << 32)
            now = time.time()
            ntp = ntp_of(now)
            abs_send_time = abs_send_time_of(ntp)
            last = len(payloads) - 1
            for i, payload in enumerate(payloads):
                d = descriptors[i]
                if d is not None and d.pid_bits:
                    # A fresh picture id per frame, as an encoder gives (the loop repeats
                    # its frames; a VP8-aware forwarder drops repeated ids as late copies).
                    payload = rewrite_vp8(payload, d, n & ((1 << d.pid_bits) - 1), d.tl0)
                tag = TAG.pack(self._index, counter)
                counter += 1
                packet = RtpView(0, int(i == last), seq, timestamp, 0, payload + tag)
                sent[tag] = time.perf_counter()
                self._out.send(packet, seq, timestamp, abs_send_time, ntp)
                seq = (seq + 1) % (1 << 16)
            n += 1


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


def start_publisher(
    transceiver: RTCRtpTransceiver,
    loops: dict[str, list[list[bytes]]],
    meter: Meter,
    tasks: TaskSet,
) -> Publisher:
    out = OutboundRtp(transceiver.sender, transceiver, tasks=tasks)
    if transceiver.kind == "video":
        return Publisher(out, loops["video"], rate=90_000, step=3000, meter=meter, tasks=tasks)
    return Publisher(out, loops["audio"], rate=48_000, step=960, meter=meter, tasks=tasks)


# ---------------------------------------------------------------- Seoulbridge signaling


async def seoulbridge_participant(
    port: int,
    room: str,
    me: str,
    loops: dict[str, list[list[bytes]]],
    meter: Meter,
    tasks: TaskSet,
) -> RTCPeerConnection:
    """Join the bench server's MediaRoom; answer every offer it sends (as a page would)."""
    pc = new_pc()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(json.dumps({"op": "join", "room": room, "participant": me}).encode() + b"\n")
    await writer.drain()
    hooked: set[str] = set()
    publishing: set[str] = set()
    first_answer = asyncio.Event()

    async def negotiate() -> None:
        while line := await reader.readline():
            offer = json.loads(line)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            for transceiver in pc.getTransceivers():
                mid = transceiver.mid
                if mid in offer["publish"].values() and mid not in publishing:
                    transceiver.direction = "sendonly"
                    start_publisher(transceiver, loops, meter, tasks)
                    publishing.add(mid)
            by_mid = {t["mid"]: t for t in offer["tracks"]}
            for transceiver in pc.getTransceivers():
                mid = transceiver.mid
                if mid in by_mid and mid not in hooked:
                    track = by_mid[mid]
                    name = f"{room}/{me}<-{track['participant_id']}/{track['kind']}"
                    sink = meter.sink(name, track["kind"])
                    ReceiveHook(transceiver.receiver, sink, tasks=tasks, estimate_bandwidth=False)
                    hooked.add(mid)
            await pc.setLocalDescription(await pc.createAnswer())
            message = {"op": "answer", "sdp": pc.localDescription.sdp}
            writer.write(json.dumps(message).encode() + b"\n")
            await writer.drain()
            first_answer.set()

    tasks.spawn(negotiate(), name=f"negotiate {room}/{me}")
    await asyncio.wait_for(first_answer.wait(), 120)
    return pc


# ---------------------------------------------------------------------- Janus signaling


class JanusSession:
    """One Janus HTTP API session (plugin handles, messages, long-polled events)."""

    def __init__(self, base: str, tasks: TaskSet) -> None:
        import aiohttp

        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90))
        self._base = base
        self._tasks = tasks
        self._id = 0
        #: transaction -> the plugin event that answers it (Janus tags replies with it)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def _post(
        self, path: str, body: dict[str, Any], transaction: str | None = None
    ) -> dict[str, Any]:
        body = {**body, "transaction": transaction or f"{random.getrandbits(64):x}"}
        async with self._http.post(self._base + path, json=body) as response:
            reply: dict[str, Any] = await response.json(content_type=None)
        if reply.get("janus") == "error":
            raise RuntimeError(f"janus: {reply['error']}")
        return reply

    async def start(self) -> None:
        self._id = (await self._post("", {"janus": "create"}))["data"]["id"]
        self._tasks.spawn(self._poll(), name="janus events")

    async def _poll(self) -> None:
        while True:
            url = f"{self._base}/{self._id}?maxev=20"
            async with self._http.get(url) as response:
                events = await response.json(content_type=None)
            for event in events if isinstance(events, list) else [events]:
                waiter = self._pending.pop(event.get("transaction", ""), None)
                if waiter is not None and event.get("janus") == "event" and not waiter.done():
                    waiter.set_result(event)

    async def attach(self) -> int:
        reply = await self._post(
            f"/{self._id}", {"janus": "attach", "plugin": "janus.plugin.videoroom"}
        )
        handle: int = reply["data"]["id"]
        return handle

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Send a plugin request; returns its synchronous reply or the next event of the handle."""
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        transaction = f"{random.getrandbits(64):x}"
        waiter = asyncio.get_running_loop().create_future()
        self._pending[transaction] = waiter
        reply = await self._post(f"/{self._id}/{handle}", request, transaction)
        if reply.get("janus") == "success":
            self._pending.pop(transaction, None)
            return reply
        event = await asyncio.wait_for(waiter, 30)
        data = event.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise RuntimeError(f"janus videoroom: {data['error']}")
        return event

    async def trickle_done(self, handle: int) -> None:
        await self._post(
            f"/{self._id}/{handle}", {"janus": "trickle", "candidate": {"completed": True}}
        )

    async def aclose(self) -> None:
        await self._http.close()


async def janus_create_room(session: JanusSession, room: int) -> None:
    handle = await session.attach()
    await session.message(
        handle,
        {
            "request": "create",
            "room": room,
            "publishers": 3,
            "videocodec": "vp8",
            "audiocodec": "opus",
            "bitrate": 0,
            "fir_freq": 0,
            "notify_joining": False,
        },
    )


async def janus_publish(
    session: JanusSession,
    room: int,
    feed: int,
    loops: dict[str, list[list[bytes]]],
    meter: Meter,
    tasks: TaskSet,
) -> RTCPeerConnection:
    handle = await session.attach()
    await session.message(
        handle, {"request": "join", "ptype": "publisher", "room": room, "id": feed}
    )
    pc = new_pc()
    for kind in ("audio", "video"):
        start_publisher(pc.addTransceiver(kind, direction="sendonly"), loops, meter, tasks)
    await pc.setLocalDescription(await pc.createOffer())
    event = await session.message(
        handle,
        {"request": "configure", "audio": True, "video": True},
        {"type": "offer", "sdp": pc.localDescription.sdp},
    )
    await pc.setRemoteDescription(RTCSessionDescription(**event["jsep"]))
    await session.trickle_done(handle)
    return pc


async def janus_subscribe(
    session: JanusSession,
    room: int,
    name: str,
    feeds: dict[int, str],
    meter: Meter,
    tasks: TaskSet,
) -> RTCPeerConnection:
    handle = await session.attach()
    event = await session.message(
        handle,
        {
            "request": "join",
            "ptype": "subscriber",
            "room": room,
            "streams": [{"feed": feed} for feed in feeds],
        },
    )
    streams = event["plugindata"]["data"].get("streams", [])
    pc = new_pc()
    await pc.setRemoteDescription(RTCSessionDescription(**event["jsep"]))
    by_mid = {s["mid"]: s for s in streams}
    for transceiver in pc.getTransceivers():
        stream = by_mid.get(transceiver.mid)
        if stream is None or stream.get("type") not in ("audio", "video"):
            continue
        kind = stream["type"]
        sink = meter.sink(f"{name}<-{feeds.get(stream.get('feed_id', 0), '?')}/{kind}", kind)
        ReceiveHook(transceiver.receiver, sink, tasks=tasks, estimate_bandwidth=False)
    await pc.setLocalDescription(await pc.createAnswer())
    await session.message(
        handle, {"request": "start"}, {"type": "answer", "sdp": pc.localDescription.sdp}
    )
    await session.trickle_done(handle)
    return pc
