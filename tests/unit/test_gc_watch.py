"""Garbage collections are timed, and a serving node freezes what its startup made."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from tests.support.node_process import NodeProcess
from web.gc_watch import CollectionWatch

METRICS_TOKEN = "g" * 32


def _count(registry: CollectorRegistry, generation: str) -> float:
    value = registry.get_sample_value(
        "seoulbridge_gc_pause_seconds_count", {"generation": generation}
    )
    return value or 0.0


def test_each_collection_is_timed_and_a_long_one_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    watch = CollectionWatch(registry, warn_s=0.0)  # every collection is "long" here
    watch.install()
    try:
        with caplog.at_level(logging.WARNING, logger="web.gc_watch"):
            gc.collect()
        assert _count(registry, "2") >= 1
        assert watch.worst_s > 0
        assert any("garbage collection (generation 2)" in r.message for r in caplog.records)
    finally:
        watch.remove()
    before = _count(registry, "2")
    gc.collect()
    assert _count(registry, "2") == before  # removed: no longer watching
    assert registry.get_sample_value("seoulbridge_gc_frozen_objects") == gc.get_freeze_count()


async def test_a_serving_node_freezes_what_its_startup_made(tmp_path: Path) -> None:
    """Its later full collections walk only what the calls made: the node's metrics say
    how many objects were frozen, and collections are being timed."""
    node = NodeProcess(tmp_path / "data", env={"SEOULBRIDGE_METRICS_TOKEN": METRICS_TOKEN})
    node.data_dir.mkdir()
    try:
        await asyncio.to_thread(node.start)
        async with aiohttp.ClientSession() as http:
            async with http.get(
                node.base_url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
            ) as r:
                assert r.status == 200
                text = await r.text()
        frozen = re.search(r"^seoulbridge_gc_frozen_objects (\S+)$", text, re.M)
        assert frozen is not None, text[:2000]
        # Startup alone makes ~135,000 (modules, schemas, services): most must be frozen.
        assert float(frozen.group(1)) > 50_000, frozen.group(0)
        assert "seoulbridge_gc_pause_seconds_bucket" in text
        assert "froze the" in node.log_tail(200)
    finally:
        node.kill()
