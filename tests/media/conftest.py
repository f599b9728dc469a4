"""Fixtures shared by the media tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import aiortc.rtcrtpreceiver
import pytest
from aiortc.codecs import get_decoder


@pytest.fixture
def decoder_threads() -> Iterator[list[threading.Thread]]:
    """Threads in which aiortc created a decoder (aiortc looks get_decoder up per call)."""
    threads: list[threading.Thread] = []
    original = aiortc.rtcrtpreceiver.get_decoder

    def counting(codec: Any) -> Any:
        threads.append(threading.current_thread())
        return get_decoder(codec)

    aiortc.rtcrtpreceiver.get_decoder = counting
    try:
        yield threads
    finally:
        aiortc.rtcrtpreceiver.get_decoder = original
