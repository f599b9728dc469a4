"""SFU load benchmark: N three-party rooms on one server process, RTP forwarding vs MediaRelay.

    .venv/bin/python bench/sfu_load.py --rooms 10 --seconds 20

Each participant is an aiortc client on loopback that publishes synthetic VP8
640x480 at 30 fps (pre-encoded once, so publishers cost little) plus Opus, and
subscribes to the two others. Subscribers count frames at the RTP level
(marker bits) and do not decode, so the client processes stay cheap. The
server runs in its own process; its CPU (all threads, from /proc) is sampled
over the measurement window. Printed per mode: server CPU per forwarded stream
(one publisher's audio+video to one subscriber; 6 per room), frames per second
at each subscriber, and forwarding latency p50/p99 (publisher's send to the
subscriber's receive of the same RTP payload, both in one client process, so
it includes two loopback hops and both event loops). MediaRelay re-encodes, so
payloads differ and its latency is not measured by payload match.

Modes: ``rtp`` (media.rtp_forwarder.RtpForwarder) and ``relay``
(media.relay.RelayForwarder, decode + re-encode per subscriber). The baseline
runs ``--baseline-rooms`` rooms (default 1) because transcoding saturates this
machine long before 10 rooms; the ratio compares CPU per forwarded stream.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402
from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack  # noqa: E402
from aiortc.rtp import RtpPacket  # noqa: E402

from media.aiortc_internals import ReceiveHook, observe_sent_rtp  # noqa: E402
from media.forwarding import Forwarder, Kind, Publication  # noqa: E402

WIDTH, HEIGHT, FPS = 640, 480, 30
VIDEO_BITRATE = 800_000
LOOP_FRAMES = 90  # 3 s of video, keyframe every 30 frames
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ----------------------------------------------------------------------------- server


class BenchServer:
    """Rooms of three: every publication is attached to the other two participants."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.rooms: dict[str, tuple[Forwarder, list[str]]] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.slots: dict[tuple[str, str], dict[str, list[RTCRtpSender]]] = {}
        self.publications: dict[str, list[Publication]] = {}
        self.attached: set[tuple[str, str]] = set()

    def _forwarder(self) -> Forwarder:
        if self.mode == "rtp":
            from media.rtp_forwarder import RtpForwarder

            return RtpForwarder(measure_latency=True)
        from media.relay import RelayForwarder

        return RelayForwarder()

    def _attach_all(self, room: str) -> None:
        forwarder, members = self.rooms[room]
        for publication in self.publications.get(room, []):
            for member in members:
                if member == publication.participant_id:
                    continue
                key = (publication.id, f"{room}/{member}")
                if key in self.attached:
                    continue
                free = self.slots.get((room, member), {}).get(publication.kind)
                if not free:
                    continue
                forwarder.attach(publication.id, free.pop(0))
                self.attached.add(key)

    def stats(self) -> dict[str, Any]:
        """Server-side forwarding latency (ms) over the last measurement, then reset."""
        samples: list[float] = []
        for forwarder, _ in self.rooms.values():
            latency = getattr(forwarder, "latency_ms", None)
            if latency is not None:
                samples += list(latency)
                latency.clear()
        return {"server_latency_ms": sorted(samples)}

    async def join(self, room: str, participant: str, sdp: str) -> str:
        if room not in self.rooms:
            self.rooms[room] = (self._forwarder(), [])
        forwarder, members = self.rooms[room]
        members.append(participant)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pcs.append(pc)
        forwarder.prepare_peer(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            for transceiver in pc.getTransceivers():
                if transceiver.receiver.track is track:
                    kind: Kind = "video" if track.kind == "video" else "audio"
                    publication = Publication(participant, kind, track, transceiver.receiver)
                    forwarder.publish(publication)
                    self.publications.setdefault(room, []).append(publication)
            self._attach_all(room)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        senders: dict[str, list[RTCRtpSender]] = {"audio": [], "video": []}
        for transceiver in pc.getTransceivers():
            if transceiver.receiver.track is None:  # the client's recvonly m-lines
                transceiver.direction = "sendonly"
                senders[transceiver.kind].append(transceiver.sender)
        self.slots[(room, participant)] = senders
        await pc.setLocalDescription(await pc.createAnswer())
        self._attach_all(room)
        return pc.localDescription.sdp


async def serve(mode: str) -> None:
    server = BenchServer(mode)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            request = json.loads(line)
            if request.get("op") == "stats":
                writer.write(json.dumps(server.stats()).encode() + b"\n")
                await writer.drain()
                continue
            answer = await server.join(request["room"], request["participant"], request["sdp"])
            writer.write(json.dumps({"sdp": answer}).encode() + b"\n")
            await writer.drain()
        writer.close()

    tcp = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


# ----------------------------------------------------------------------------- clients


def encode_video_loop() -> list[bytes]:
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
    return packets[:LOOP_FRAMES]


def encode_audio_loop() -> list[bytes]:
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
    return packets[:50]


class PreEncodedTrack(MediaStreamTrack):
    """Loops pre-encoded packets at their real rate; aiortc packs them without encoding."""

    def __init__(self, kind: str, payloads: list[bytes], rate: int, step: int) -> None:
        super().__init__()
        self.kind = kind
        self._payloads = payloads
        self._rate = rate
        self._step = step
        self._n = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet[Any]:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + self._n * self._step / self._rate - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self._payloads[self._n % len(self._payloads)])
        packet.pts = self._n * self._step
        packet.time_base = fractions.Fraction(1, self._rate)
        self._n += 1
        return packet


def rtp_payload(data: bytes) -> bytes | None:
    if len(data) < 12 or 192 <= data[1] <= 223:  # too short, or RTCP
        return None
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    end = len(data) - (data[-1] if data[0] & 0x20 else 0)
    return data[offset:end]


@dataclass
class Meter:
    sent: dict[int, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    frames: dict[str, int] = field(default_factory=dict)
    measuring: bool = False

    def on_sent(self, data: bytes) -> None:
        payload = rtp_payload(data)
        if payload is not None and len(payload) > 200:  # video packets
            self.sent[hash(payload)] = time.perf_counter()

    def sink(self, name: str) -> Any:
        self.frames.setdefault(name, 0)

        async def on_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
            if not self.measuring:
                return
            if packet.marker:
                self.frames[name] += 1
            sent = self.sent.get(hash(packet.payload))
            if sent is not None:
                self.latencies_ms.append((time.perf_counter() - sent) * 1000)

        return on_packet


async def join(
    port: int, room: str, participant: str, video: list[bytes], audio: list[bytes], meter: Meter
) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video_sender = pc.addTransceiver(
        PreEncodedTrack("video", video, 90_000, 90_000 // FPS), direction="sendonly"
    ).sender
    pc.addTransceiver(PreEncodedTrack("audio", audio, 48_000, 960), direction="sendonly")
    for kind in ("video", "video", "audio", "audio"):
        pc.addTransceiver(kind, direction="recvonly")
    hooks: list[ReceiveHook] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        for transceiver in pc.getTransceivers():
            if transceiver.receiver.track is track:
                sink = None
                if track.kind == "video":
                    sink = meter.sink(f"{room}/{participant}/{transceiver.mid}")
                hooks.append(ReceiveHook(transceiver.receiver, sink, estimate_bandwidth=False))

    await pc.setLocalDescription(await pc.createOffer())
    observe_sent_rtp(video_sender, meter.on_sent)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = {"room": room, "participant": participant, "sdp": pc.localDescription.sdp}
    writer.write(json.dumps(request).encode() + b"\n")
    answer = json.loads(await reader.readline())
    writer.close()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    return pc


async def clients(
    port: int, rooms: list[int], warmup: float, seconds: float, loops: dict[str, list[str]]
) -> None:
    video = [bytes.fromhex(p) for p in loops["video"]]
    audio = [bytes.fromhex(p) for p in loops["audio"]]
    meter = Meter()
    pcs = []
    for room in rooms:
        for participant in ("counselor", "resident", "interpreter"):
            pcs.append(await join(port, f"room{room}", participant, video, audio, meter))
    print("JOINED", flush=True)
    # Every client process starts its window when the driver says GO.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.sleep(warmup)
    meter.measuring = True
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    meter.measuring = False
    elapsed = time.perf_counter() - started
    fps = {name: count / elapsed for name, count in meter.frames.items()}
    print(json.dumps({"fps": fps, "latencies_ms": meter.latencies_ms[::5]}), flush=True)
    for pc in pcs:
        await pc.close()


# ----------------------------------------------------------------------------- driver


def server_stats(port: int) -> dict[str, Any]:
    import socket

    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b'{"op": "stats"}\n')
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    result: dict[str, Any] = json.loads(data)
    return result


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def run_mode(
    mode: str, rooms: int, processes: int, warmup: float, seconds: float, media_file: Path
) -> dict[str, Any]:
    me = [sys.executable, __file__]
    server = subprocess.Popen([*me, "serve", mode], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        groups = [list(range(rooms))[i::processes] for i in range(processes)]
        workers = [
            subprocess.Popen(
                [
                    *me,
                    "clients",
                    str(port),
                    ",".join(map(str, g)),
                    str(warmup),
                    str(seconds),
                    str(media_file),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for g in groups
            if g
        ]
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "JOINED"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("GO\n")
            worker.stdin.flush()
        time.sleep(warmup)
        server_stats(port)  # discard warm-up samples
        cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
        time.sleep(seconds)
        cpu1, t1 = cpu_seconds(server.pid), time.perf_counter()
        server_latency = server_stats(port)["server_latency_ms"]
        fps: dict[str, float] = {}
        latencies: list[float] = []
        for worker in workers:
            assert worker.stdout is not None
            out = worker.stdout.read()
            worker.wait(timeout=60)
            result = json.loads(out.strip().splitlines()[-1])
            fps.update(result["fps"])
            latencies += result["latencies_ms"]
    finally:
        server.kill()
        server.wait()
    cpu_percent = (cpu1 - cpu0) / (t1 - t0) * 100
    streams = rooms * 6
    median_fps = statistics.median(fps.values()) if fps else 0.0
    return {
        "median_fps": median_fps,
        # The cost at the intended 30 fps, when the load could not be delivered in full.
        "cpu_per_stream_at_30fps": cpu_percent / streams * FPS / max(median_fps, 1e-9),
        "mode": mode,
        "rooms": rooms,
        "streams": streams,
        "server_cpu_percent": cpu_percent,
        "cpu_per_stream": cpu_percent / streams,
        "fps": sorted(fps.values()),
        "latencies_ms": sorted(latencies),
        "server_latency_ms": server_latency,
    }


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def report(result: dict[str, Any]) -> None:
    fps = result["fps"]
    lat = result["latencies_ms"]
    print(
        f"{result['mode']}: {result['rooms']} rooms, {result['streams']} forwarded streams, "
        f"server CPU {result['server_cpu_percent']:.1f} % of a core = "
        f"{result['cpu_per_stream']:.2f} % per stream"
    )
    if result["median_fps"] < 25:
        print(
            f"       WARNING: subscribers got {result['median_fps']:.1f} fps: the load was not "
            f"delivered (clients or server starved); scaled to 30 fps that is "
            f"{result['cpu_per_stream_at_30fps']:.2f} % per stream"
        )
    if fps:
        print(
            f"       fps per subscriber: min {min(fps):.1f}  median {statistics.median(fps):.1f}  "
            f"max {max(fps):.1f}  ({sum(f >= 25 for f in fps)}/{len(fps)} at >= 25 fps)"
        )
    if lat:
        print(
            f"       latency publisher->subscriber: p50 {pct(lat, 0.5):.1f} ms  "
            f"p99 {pct(lat, 0.99):.1f} ms  ({len(lat)} samples)"
        )
    else:
        print("       latency: not measured (payloads are re-encoded)")
    server_lat = result["server_latency_ms"]
    if server_lat:
        print(
            f"       in-server forwarding (arrival to last send): p50 {pct(server_lat, 0.5):.1f} ms"
            f"  p99 {pct(server_lat, 0.99):.1f} ms  (1 ms clock resolution)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--baseline-rooms", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=4)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--modes", default="rtp,relay")
    args = parser.parse_args()
    media_file = Path(tempfile.mkdtemp()) / "media.json"
    loops = {
        "video": [p.hex() for p in encode_video_loop()],
        "audio": [p.hex() for p in encode_audio_loop()],
    }
    media_file.write_text(json.dumps(loops))
    results = {}
    for mode in args.modes.split(","):
        rooms = args.rooms if mode == "rtp" else args.baseline_rooms
        results[mode] = run_mode(
            mode, rooms, args.client_processes, args.warmup, args.seconds, media_file
        )
        report(results[mode])
    if "rtp" in results and "relay" in results:
        rtp, relay = results["rtp"], results["relay"]
        ratio = relay["cpu_per_stream"] / max(rtp["cpu_per_stream"], 1e-9)
        scaled = relay["cpu_per_stream_at_30fps"] / max(rtp["cpu_per_stream_at_30fps"], 1e-9)
        print(
            f"ratio: MediaRelay costs {ratio:.1f}x the CPU per forwarded stream of RtpForwarder "
            f"as measured, {scaled:.1f}x scaled to 30 fps delivered"
        )
        if min(rtp["median_fps"], relay["median_fps"]) < 25:
            print(
                "       (a mode delivered < 25 fps: both ratios are unreliable, the scaled one "
                "only roughly so if fps is near 25; rerun quieter or with fewer rooms)"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "clients":
        rooms = [int(r) for r in sys.argv[3].split(",")]
        asyncio.run(
            clients(
                int(sys.argv[2]),
                rooms,
                float(sys.argv[4]),
                float(sys.argv[5]),
                json.loads(Path(sys.argv[6]).read_text()),
            )
        )
    else:
        main()
