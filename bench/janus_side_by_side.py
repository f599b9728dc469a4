"""Seoulbridge and Janus 1.1.2's VideoRoom side by side: same clients, alternating runs.

    .venv/bin/python bench/janus_side_by_side.py --rooms 10 --repeat 2 --modes janus,new,base

Needs Debian's ``janus`` and root (for the network namespace). Janus gathers no
ICE candidates on a loopback *interface*, so everything (Janus, Seoulbridge's
server, the clients) runs inside a network namespace this script creates:
its own ``lo`` plus a veth pair whose one end carries 127.1.0.1/32. Packets to
that address stay on the namespace's loopback path; nothing leaves it. The
namespace is deleted at the end.

Each Janus run starts a fresh Janus (HTTP transport and VideoRoom only, ICE
restricted to the veth interface); each participant publishes on one
connection and subscribes to the two others on a second (multistream), as
Janus's own clients do. CPU is Janus's process (all threads). The clients,
window, warm-up and the "every subscriber receives audio and video before the
window" check are ``bench/sfu_load.py``'s, so figures compare directly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import sfu_load  # noqa: E402

NETNS = "sbbench"
ADDRESS = "127.1.0.1"
JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
HTTP_PORT = 18088


def janus_config(folder: Path) -> None:
    plugins = sorted(p.name for p in (JANUS_LIB / "plugins").glob("*.so"))
    transports = sorted(p.name for p in (JANUS_LIB / "transports").glob("*.so"))
    loggers = sorted(p.name for p in (JANUS_LIB / "loggers").glob("*.so"))
    (folder / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{JANUS_LIB / "plugins"}"
    transports_folder = "{JANUS_LIB / "transports"}"
    events_folder = "{JANUS_LIB / "events"}"
    loggers_folder = "{JANUS_LIB / "loggers"}"
    debug_level = 3
    session_timeout = 0
    admin_secret = "unused"
}}
media: {{
    rtp_port_range = "20000-40000"
}}
nat: {{
    ice_enforce_list = "veth0"
    ignore_mdns = true
}}
plugins: {{
    disable = "{",".join(p for p in plugins if "videoroom" not in p)}"
}}
transports: {{
    disable = "{",".join(t for t in transports if "http" not in t)}"
}}
loggers: {{
    disable = "{",".join(loggers)}"
}}
events: {{
    broadcast = false
}}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
    json = "plain"
    base_path = "/janus"
    http = true
    port = {HTTP_PORT}
    ip = "127.0.0.1"
    https = false
}}
admin: {{
    admin_http = false
}}
"""
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n}\n")


def start_janus() -> tuple[subprocess.Popen[bytes], Path]:
    folder = Path(tempfile.mkdtemp(prefix="janus-bench-"))
    janus_config(folder)
    log = open(folder / "janus.log", "wb")
    janus = subprocess.Popen(
        ["janus", "-C", str(folder / "janus.jcfg"), "-F", str(folder)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/janus/info", timeout=1).read()
            return janus, folder
        except OSError:
            time.sleep(0.2)
    janus.kill()
    raise RuntimeError(f"janus did not start; see {folder / 'janus.log'}")


def run_janus(args: argparse.Namespace, media_file: Path) -> dict[str, Any]:
    janus, folder = start_janus()
    try:
        result = sfu_load.run_clients(
            "janus",
            args.rooms,
            args.client_processes,
            args.warmup,
            args.seconds,
            media_file,
            janus_url=f"http://127.0.0.1:{HTTP_PORT}/janus",
            measured_pids=[janus.pid],
            profile=None,
        )
    except Exception:
        print((folder / "janus.log").read_text()[-3000:], file=sys.stderr)
        raise
    finally:
        janus.terminate()
        try:
            janus.wait(timeout=10)
        except subprocess.TimeoutExpired:
            janus.kill()
            janus.wait()
        shutil.rmtree(folder, ignore_errors=True)
    result["mode"] = "janus"
    return result


def inside(args: argparse.Namespace) -> None:
    media_file = sfu_load.prepare_media()
    modes = args.modes.split(",")
    trees = {"base": sfu_load.export_tree(sfu_load.base_ref(args))} if "base" in modes else {}
    print(f"load average at start: {sfu_load.load_average()} ({os.cpu_count()} cores)", flush=True)
    results = []
    for _ in range(args.repeat):
        for mode in modes:
            try:
                if mode == "janus":
                    result = run_janus(args, media_file)
                else:
                    result = sfu_load.run_mode(mode, args, media_file, trees)
            except RuntimeError as exc:  # reported, and the alternation goes on
                print(f"{mode}: run failed: {exc}", flush=True)
                continue
            sfu_load.report(result)
            results.append(result)
    sfu_load.summary(results)
    ratios(results)


def ratios(results: list[dict[str, Any]]) -> None:
    """Each Seoulbridge run against the Janus run next to it (paired, same machine load)."""
    janus = [r for r in results if r["mode"] == "janus"]
    if not janus:
        return
    print("\nagainst the nearest Janus run (CPU/stream ratio, p50 difference, p99 ratio):")
    for index, result in enumerate(results):
        if result["mode"] == "janus":
            continue
        nearest = min(
            (r for r in results if r["mode"] == "janus"),
            key=lambda r: abs(results.index(r) - index),
        )
        j50, j99 = sfu_load.pct(nearest["video_ms"], 0.5), sfu_load.pct(nearest["video_ms"], 0.99)
        s50, s99 = sfu_load.pct(result["video_ms"], 0.5), sfu_load.pct(result["video_ms"], 0.99)
        print(
            f"  {result['mode']:>14}: "
            f"CPU {result['cpu_per_stream'] / nearest['cpu_per_stream']:.2f}x"
            f", p50 {s50 - j50:+.1f} ms, p99 {s99 / j99:.2f}x  (load {result['load']})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sfu_load.add_common_arguments(parser)
    parser.add_argument("--modes", default="janus,new,base", help="janus, new, new-asyncio, base")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args)
        return
    if shutil.which("janus") is None:
        raise SystemExit("janus is not installed (apt-get install janus)")

    def ip(*words: str) -> None:
        subprocess.run(["ip", *words], check=True)

    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
    ip("netns", "add", NETNS)
    try:
        ip("-n", NETNS, "link", "set", "lo", "up")
        ip("-n", NETNS, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
        ip("-n", NETNS, "addr", "add", f"{ADDRESS}/32", "dev", "veth0")
        ip("-n", NETNS, "link", "set", "veth0", "up")
        ip("-n", NETNS, "link", "set", "veth1", "up")
        command = [sys.executable, __file__, "--inside", *sys.argv[1:]]
        subprocess.run(["ip", "netns", "exec", NETNS, *command], check=True)
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], check=False)


if __name__ == "__main__":
    main()
