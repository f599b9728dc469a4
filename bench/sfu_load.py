"""SFU load benchmark: N three-party rooms through the real media.sfu.MediaRoom + RtpForwarder.

    .venv/bin/python bench/sfu_load.py --rooms 10 --seconds 20 --modes base,new

Each participant is an aiortc client (``bench/sfu_clients.py``) on one
max-bundle connection, answering the server's offers as a page does; it
publishes VP8 640x480@30 (~1 Mb/s, pre-packetized) plus Opus and subscribes to
the two others. Before the measurement window opens, every subscriber must have
received audio *and* video from both others (else the run aborts). Printed per
run: server CPU (all its processes, all threads, from /proc) per forwarded
stream (one publisher's audio+video to one subscriber: 6 per room), fps and
audio packets/s at each subscriber, end-to-end latency (publisher's send to the
subscriber's receive of the same tagged packet, both in one client process:
includes the time packets wait in the server's sockets and event loop), and the
in-server residence (datagram callback to last send), plus the load average.

Modes: ``new`` is this tree; ``base`` is the server code of ``--base-ref``
(default: where this branch left main), exported with ``git archive``, so the
two run side by side with the same clients, alternating (``--repeat``).
``--servers 2`` places rooms on two server processes (room i on process
i % 2), as multi-node placement will; ``--loop`` picks the server's event loop.
``--py-spy DIR`` records a profile of every server (run it apart from timed runs).
``bench/janus_side_by_side.py`` adds Janus with the same clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
STREAMS_PER_ROOM = 6  # 3 publishers x 2 subscribers, audio+video each
PARTICIPANTS = ("counselor", "resident", "interpreter")


# ----------------------------------------------------------------------------- server


async def serve(tree: str, loop_name: str) -> None:
    """A MediaRoom per room; each participant's control connection carries offers and answers."""
    sys.path.insert(0, tree)
    from kernel.media_types import OfferToSend
    from media.rtp_forwarder import RtpForwarder
    from media.sfu import MediaRoom, NegotiatorConfig

    rooms: dict[str, MediaRoom] = {}
    writers: dict[tuple[str, str], asyncio.StreamWriter] = {}

    def room_of(room_id: str) -> MediaRoom:
        if room_id not in rooms:

            async def send_offer(participant: str, offer: OfferToSend) -> None:
                message = {
                    "sdp": offer.sdp,
                    "publish": dict(offer.publish),
                    "tracks": [
                        {"mid": t.mid, "participant_id": t.participant_id, "kind": t.kind}
                        for t in offer.tracks
                    ],
                }
                writer = writers[(room_id, participant)]
                writer.write(json.dumps(message).encode() + b"\n")
                await writer.drain()

            # Loaded client processes answer slowly while joining: give them time.
            rooms[room_id] = MediaRoom(
                room_id,
                RtpForwarder(measure_latency=True),
                send_offer=send_offer,
                negotiation=NegotiatorConfig(answer_timeout_s=60, resends=2),
            )
        return rooms[room_id]

    def stats() -> dict[str, Any]:
        samples: list[float] = []
        for room in rooms.values():
            latency = getattr(room.forwarder, "latency_ms", None)
            if latency is not None:
                samples += list(latency)
                latency.clear()
        import media

        states: dict[str, int] = {}
        for room in rooms.values():
            for peer in room.peers.values():
                states[str(peer.state)] = states.get(str(peer.state), 0) + 1
        return {
            "peers": states,
            "server_latency_ms": samples[::4],
            "loop": type(asyncio.get_running_loop()).__name__,
            "code": str(Path(media.__file__).parent.parent),
        }

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads(await reader.readline())
        if request["op"] == "stats":
            writer.write(json.dumps(stats()).encode() + b"\n")
            await writer.drain()
            writer.close()
            return
        room_id, participant = request["room"], request["participant"]
        writers[(room_id, participant)] = writer
        room = room_of(room_id)
        await room.add_peer(participant)
        while line := await reader.readline():
            await room.apply_answer(participant, json.loads(line)["sdp"])

    tcp = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"PORT {tcp.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # driver closes


def run_server(tree: str, loop_name: str) -> None:
    if loop_name == "uvloop":
        import uvloop

        uvloop.run(serve(tree, loop_name))
    else:
        asyncio.run(serve(tree, loop_name))


# ----------------------------------------------------------------------------- clients


async def join_all(
    spec: dict[str, Any],
    loops: dict[str, list[list[bytes]]],
    meter: Any,
    tasks: Any,
    pcs: list[Any],
) -> Any:
    """Every participant of this process's rooms, joined; the Janus session (or None)."""
    from bench.sfu_clients import (
        JanusSession,
        janus_create_room,
        janus_publish,
        janus_subscribe,
        seoulbridge_participant,
    )

    janus: JanusSession | None = None
    if spec["target"] == "janus":
        janus = JanusSession(spec["janus_url"], tasks)
        await janus.start()
        for room in spec["rooms"]:
            await janus_create_room(janus, 1000 + room)
            feeds = {1000 * room + i + 1: p for i, p in enumerate(PARTICIPANTS)}
            for feed in feeds:
                pcs.append(await janus_publish(janus, 1000 + room, feed, loops, meter, tasks))
            await asyncio.sleep(0.5)
            for feed, name in feeds.items():
                others = {f: n for f, n in feeds.items() if f != feed}
                pcs.append(
                    await janus_subscribe(
                        janus, 1000 + room, f"room{room}/{name}", others, meter, tasks
                    )
                )
    else:
        for room in spec["rooms"]:
            port = spec["ports"][room % len(spec["ports"])]
            for participant in PARTICIPANTS:
                pcs.append(
                    await seoulbridge_participant(
                        port, f"room{room}", participant, loops, meter, tasks
                    )
                )
    return janus


async def clients(spec: dict[str, Any]) -> None:
    """One client process: whole rooms (publishers and subscribers of a room share a clock)."""
    from bench.sfu_clients import JanusSession, Meter
    from kernel.taskset import TaskSet

    loops_hex = json.loads(Path(spec["media"]).read_text())  # noqa: ASYNC240 - before any media
    loops = {k: [[bytes.fromhex(p) for p in f] for f in v] for k, v in loops_hex.items()}
    meter = Meter()
    tasks = TaskSet("bench clients")
    pcs: list[Any] = []
    janus: JanusSession | None = None
    try:
        janus = await asyncio.wait_for(join_all(spec, loops, meter, tasks, pcs), 300)
    except (TimeoutError, RuntimeError, OSError) as exc:
        print(f"join failed: {exc!r}", flush=True)
        return
    print("JOINED", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    # Every subscriber must get audio and video from both others before measuring.
    expected = len(spec["rooms"]) * 12
    deadline = time.monotonic() + 60
    while True:
        flowing = [n for n, c in meter.seen.items() if c > 0]
        if len(flowing) >= expected:
            break
        if time.monotonic() > deadline:
            missing = sorted(n for n, c in meter.seen.items() if c == 0)
            print(
                json.dumps(
                    {"error": f"{len(flowing)}/{expected} streams flowing", "missing": missing}
                ),
                flush=True,
            )
            return
        await asyncio.sleep(0.2)
    print("FLOWING", flush=True)
    await asyncio.sleep(spec["warmup"])
    meter.video_ms.clear()
    meter.audio_ms.clear()
    meter.measuring = True
    started = time.perf_counter()
    await asyncio.sleep(spec["seconds"])
    meter.measuring = False
    elapsed = time.perf_counter() - started
    result = {
        "fps": {n: c / elapsed for n, c in meter.frames.items()},
        "audio_pps": {n: c / elapsed for n, c in meter.audio_packets.items()},
        "video_ms": meter.video_ms[::3],
        "audio_ms": meter.audio_ms[::3],
    }
    print(json.dumps(result), flush=True)
    for pc in pcs:
        await pc.close()
    await tasks.aclose()
    if janus is not None:
        await janus.aclose()


# ----------------------------------------------------------------------------- driver


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def udp_drops() -> int:
    """Datagrams the kernel dropped because a socket's receive buffer was full (this netns)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    header, values = [row for row in lines if row[0] == "Udp:"][:2]
    return int(values[header.index("RcvbufErrors")])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


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


def export_tree(ref: str) -> str:
    """The project's files at ``ref`` in a temporary directory (the baseline server)."""
    target = tempfile.mkdtemp(prefix="sfu-base-")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "kernel", "media"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", target], input=archive, check=True)
    return target


def start_servers(
    tree: str, loop_name: str, count: int
) -> tuple[list[subprocess.Popen[str]], list[int]]:
    servers, ports = [], []
    for _ in range(count):
        server = subprocess.Popen(
            [sys.executable, __file__, "serve", tree, loop_name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=tree,
        )
        assert server.stdout is not None
        ports.append(int(server.stdout.readline().split()[1]))
        servers.append(server)
    return servers, ports


def run_clients(
    target: str,
    rooms: int,
    processes: int,
    warmup: float,
    seconds: float,
    media_file: Path,
    *,
    ports: list[int] | None = None,
    janus_url: str = "",
    measured_pids: list[int],
    profile: Path | None = None,
) -> dict[str, Any]:
    """Start the client processes, run the window, return everything measured."""
    groups = [list(range(rooms))[i::processes] for i in range(processes)]
    workers = []
    for group in groups:
        if not group:
            continue
        spec = {
            "target": target,
            "rooms": group,
            "ports": ports or [],
            "janus_url": janus_url,
            "warmup": warmup,
            "seconds": seconds,
            "media": str(media_file),
        }
        workers.append(
            subprocess.Popen(
                [sys.executable, __file__, "clients", json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=str(ROOT),
            )
        )
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline().strip()
            if line != "JOINED":
                raise RuntimeError(f"a client process failed to join: {line!r}")
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("GO\n")
            worker.stdin.flush()
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline().strip()
            if line != "FLOWING":
                raise RuntimeError(f"not every subscriber received audio and video: {line[:2000]}")
        load_before = load_average()
        time.sleep(warmup)
        for port in ports or []:
            server_stats(port)  # discard warm-up samples
        spies = []
        if profile is not None:
            profile.mkdir(parents=True, exist_ok=True)
            for pid in measured_pids:
                spies.append(
                    subprocess.Popen(
                        [
                            str(Path(sys.executable).parent / "py-spy"),
                            "record",
                            "--nonblocking",
                            "-p",
                            str(pid),
                            "-d",
                            str(int(seconds)),
                            "-r",
                            "100",
                            "-f",
                            "raw",
                            "-o",
                            str(profile / f"{target}-{pid}.txt"),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
        cpu0 = sum(cpu_seconds(p) for p in measured_pids)
        drops0 = udp_drops()
        t0 = time.perf_counter()
        time.sleep(seconds)
        cpu1 = sum(cpu_seconds(p) for p in measured_pids)
        drops = udp_drops() - drops0
        t1 = time.perf_counter()
        server_latency: list[float] = []
        loop_names = set()
        peer_states: dict[str, int] = {}
        for port in ports or []:
            stats = server_stats(port)
            server_latency += stats["server_latency_ms"]
            loop_names.add(f"{stats['loop']} ({stats['code']})")
            for state, count in stats["peers"].items():
                peer_states[state] = peer_states.get(state, 0) + count
        result: dict[str, Any] = {"fps": {}, "audio_pps": {}, "video_ms": [], "audio_ms": []}
        for worker in workers:
            assert worker.stdout is not None
            out = worker.stdout.read()
            worker.wait(timeout=60)
            part = json.loads(out.strip().splitlines()[-1])
            for key in ("fps", "audio_pps"):
                result[key].update(part[key])
            result["video_ms"] += part["video_ms"]
            result["audio_ms"] += part["audio_ms"]
        for spy in spies:
            spy.wait(timeout=60)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    result.update(
        {
            "rooms": rooms,
            "streams": rooms * STREAMS_PER_ROOM,
            "server_cpu_percent": (cpu1 - cpu0) / (t1 - t0) * 100,
            "server_latency_ms": server_latency,
            "load": f"{load_before} -> {load_average()}",
            "loop": ",".join(sorted(loop_names)),
            "peer_states": peer_states,
            "udp_drops": drops,
        }
    )
    result["cpu_per_stream"] = result["server_cpu_percent"] / result["streams"]
    return result


def run_seoulbridge(
    tree: str, loop_name: str, servers: int, args: argparse.Namespace, media_file: Path, label: str
) -> dict[str, Any]:
    procs, ports = start_servers(tree, loop_name, servers)
    try:
        result = run_clients(
            "seoulbridge",
            args.rooms,
            args.client_processes,
            args.warmup,
            args.seconds,
            media_file,
            ports=ports,
            measured_pids=[p.pid for p in procs],
            profile=Path(args.py_spy) / label if args.py_spy else None,
        )
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    result["mode"] = label
    return result


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def report(result: dict[str, Any]) -> None:
    fps = list(result["fps"].values())
    audio = list(result["audio_pps"].values())
    video_ms, audio_ms = result["video_ms"], result["audio_ms"]
    print(
        f"{result['mode']}: {result['rooms']} rooms, {result['streams']} streams, "
        f"load {result['load']}"
        f"{' loop ' + result['loop'] if result.get('loop') else ''}\n"
        f"   server CPU {result['server_cpu_percent']:.1f} % of a core = "
        f"{result['cpu_per_stream']:.2f} % per stream"
    )
    if fps:
        print(
            f"   video fps per subscriber: min {min(fps):.1f} median {statistics.median(fps):.1f} "
            f"({sum(f >= 25 for f in fps)}/{len(fps)} at >= 25); audio packets/s: min "
            f"{min(audio, default=0):.1f} median {statistics.median(audio) if audio else 0:.1f}"
        )
    print(
        f"   end to end video p50 {pct(video_ms, 0.5):.1f} ms p99 {pct(video_ms, 0.99):.1f} ms; "
        f"audio p50 {pct(audio_ms, 0.5):.1f} ms p99 {pct(audio_ms, 0.99):.1f} ms "
        f"({len(video_ms)}+{len(audio_ms)} samples)"
    )
    if result.get("udp_drops"):
        print(f"   kernel dropped {result['udp_drops']} datagrams at full socket buffers")
    if result.get("peer_states"):
        print(f"   server peers by state at the end: {result['peer_states']}")
    server = result.get("server_latency_ms") or []
    if server:
        print(
            f"   in server (datagram callback to last send): p50 {pct(server, 0.5):.1f} ms "
            f"p99 {pct(server, 0.99):.1f} ms (1 ms clock)"
        )
    sys.stdout.flush()


def summary(results: list[dict[str, Any]]) -> None:
    """Per mode: every run's figures on one line, so alternating runs read side by side."""
    print("\nsummary (each run: CPU/stream %, video p50/p99 ms, min fps, load):")
    for mode in dict.fromkeys(r["mode"] for r in results):
        runs = [r for r in results if r["mode"] == mode]
        cells = [
            f"{r['cpu_per_stream']:.2f} %, "
            f"{pct(r['video_ms'], 0.5):.1f}/{pct(r['video_ms'], 0.99):.1f}"
            f" ms, {min(r['fps'].values()) if r['fps'] else 0:.0f} fps, load {r['load']}"
            for r in runs
        ]
        print(f"  {mode:>14}: " + " | ".join(cells))


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=4)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="alternating rounds of all modes")
    parser.add_argument("--servers", type=int, default=1, help="server processes (rooms spread)")
    parser.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    parser.add_argument(
        "--base-ref", default="", help="git ref of the baseline (default: fork point)"
    )
    parser.add_argument("--py-spy", default="", help="record server profiles into this directory")


def prepare_media() -> Path:
    sys.path.insert(0, str(ROOT))
    from bench.sfu_clients import media_loops

    media_file = Path(tempfile.mkdtemp(prefix="sfu-media-")) / "media.json"
    media_file.write_text(json.dumps(media_loops()))
    return media_file


def base_ref(args: argparse.Namespace) -> str:
    if args.base_ref:
        return str(args.base_ref)
    out = subprocess.run(
        ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], capture_output=True, text=True
    )
    return out.stdout.strip() or "HEAD"


def run_mode(
    mode: str, args: argparse.Namespace, media_file: Path, trees: dict[str, str]
) -> dict[str, Any]:
    """``new``, ``new-asyncio`` or ``base`` (always the standard loop, as it shipped)."""
    if mode == "base":
        return run_seoulbridge(trees["base"], "asyncio", args.servers, args, media_file, "base")
    loop_name = "asyncio" if mode == "new-asyncio" else args.loop
    label = f"{mode}" if mode != "new" else f"new-{loop_name}"
    return run_seoulbridge(str(ROOT), loop_name, args.servers, args, media_file, label)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--modes", default="base,new", help="base, new, new-asyncio")
    parser.add_argument("--verbose", action="store_true", help="fps of every stream")
    args = parser.parse_args()
    media_file = prepare_media()
    modes = args.modes.split(",")
    trees = {"base": export_tree(base_ref(args))} if "base" in modes else {}
    print(f"load average at start: {load_average()} ({os.cpu_count()} cores)", flush=True)
    results = []
    for _ in range(args.repeat):
        for mode in modes:
            try:
                result = run_mode(mode, args, media_file, trees)
            except RuntimeError as exc:  # reported, and the alternation goes on
                print(f"{mode}: run failed: {exc}", flush=True)
                continue
            report(result)
            results.append(result)
    summary(results)
    if args.verbose:
        for result in results:
            for name, fps in sorted(result["fps"].items()):
                print(f"   {result['mode']} {name}: {fps:.1f} fps")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        run_server(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "clients":
        sys.path.insert(0, str(ROOT))
        spec = json.loads(sys.argv[2])
        if spec.get("loop", "uvloop") == "uvloop":
            import uvloop

            uvloop.run(clients(spec))
        else:
            asyncio.run(clients(spec))
    else:
        main()
