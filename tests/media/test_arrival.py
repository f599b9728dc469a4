"""Arrival times from the kernel (media.arrival), and the fast path that uses them.

An arrival taken when the loop reads a datagram carries the time the datagram waited
for a busy loop; the delay-based estimate of the publisher's uplink took that for a
queue on the uplink (media/arrival.py has the figures).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from media import arrival
from media.aiortc_internals import now_ms

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIOCGSTAMP is Linux's"),
]

GAP_S = 0.03
COUNT = 5


class _Stamped(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.fd = -1
        #: (payload, arrival from the kernel, the loop's now) per datagram.
        self.got: list[tuple[bytes, int, int]] = []
        self.all_in = asyncio.Event()

    def connection_made(self, transport: Any) -> None:
        self.fd = transport.get_extra_info("socket").fileno()
        assert arrival.enable(self.fd)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        now = now_ms()
        self.got.append((data, arrival.arrival_ms(self.fd, now), now))
        if len(self.got) == COUNT:
            self.all_in.set()


async def _sent_while_the_loop_was_busy() -> tuple[list[int], list[tuple[bytes, int, int]]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Stamped, local_addr=("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        target = transport.get_extra_info("sockname")
        sent = []
        for i in range(COUNT):
            sent.append(now_ms())
            sender.sendto(b"%d" % i, target)
            time.sleep(GAP_S)  # noqa: ASYNC251 (the point: the loop is held, nothing is read)
        await asyncio.wait_for(protocol.all_in.wait(), 5)
        return sent, protocol.got
    finally:
        sender.close()
        transport.close()


@pytest.mark.parametrize("runner", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_an_arrival_is_when_the_kernel_got_the_datagram_not_when_the_loop_read_it(
    runner: Callable[[Coroutine[Any, Any, Any]], Any],
) -> None:
    sent, got = runner(_sent_while_the_loop_was_busy())
    assert [data for data, _, _ in got] == [b"%d" % i for i in range(COUNT)]
    kernel = [stamp for _, stamp, _ in got]
    read = [now for _, _, now in got]
    # Each stamped as it was sent (loopback: at once), though all were read only once
    # the loop was free, after the last one.
    assert all(0 <= k - s <= 10 for s, k in zip(sent, kernel, strict=True)), (sent, kernel)
    assert read[0] >= sent[-1], (sent, read)


def test_no_stamp_is_the_loops_time() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        assert arrival.enable(sock.fileno())
        now = now_ms()
        assert arrival.arrival_ms(sock.fileno(), now) == now  # nothing received yet
    assert arrival.arrival_ms(-1, now) == now  # not a socket
