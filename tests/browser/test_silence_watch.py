"""The call page's watch for a media path gone silent (web/static/call-peer.js
``SilenceWatch``), run in Chromium on the polls the page makes (every 500 ms).

After a new address (Wi-Fi to mobile) the browser says "disconnected" only ~6 s
later and the page waited 5 s more: media came back 12.4 s after the change
(tests/browser/test_poor_link.py). A transport that received something in nearly
every poll and then nothing for 2.5 s is dead; one that receives a check now and
then (a page alone in the call) must never look so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

SCRIPT = Path(__file__).resolve().parents[2] / "web" / "static" / "call-peer.js"

#: Polls every 500 ms of the transport's bytesReceived (``steps``: bytes since the last
#: poll, None: not reported) and the inbound RTP packets (``media``: packets since the
#: last poll); returns the first poll time (ms) that said silent.
_RUN = """([steps, media]) => {
  const watch = new window.SB_CallPeer.SilenceWatch({ pollMs: 500 });
  let bytes = 0, packets = 0;
  for (let i = 0; i < steps.length; i++) {
    packets += media[i];
    if (steps[i] !== null) bytes += steps[i];
    if (watch.observe(i * 500, steps[i] === null ? null : bytes, packets)) return i * 500;
  }
  return null;
}"""


async def _first_silent(
    page: Any, steps: list[int | None], media: list[int] | None = None
) -> int | None:
    if media is None:  # media packets where the poll saw bytes of some size
        media = [25 if (s or 0) >= 1000 else 0 for s in steps]
    result: int | None = await page.evaluate(_RUN, [steps, media])
    return result


async def test_a_steady_path_that_stops_is_silent_after_two_and_a_half_seconds(
    browser: Any,
) -> None:
    page = await browser.new_page()
    await page.set_content("<!doctype html><title>t</title>")
    await page.add_script_tag(content=SCRIPT.read_text())
    steady = [1200] * 12  # media every poll for 6 s
    assert await _first_silent(page, steady + [0] * 4) is None  # 2 s of nothing: not yet
    assert await _first_silent(page, steady + [0] * 10) == (11 + 5) * 500  # 2.5 s after
    # A gap of 2 s and media again: nothing happened.
    assert await _first_silent(page, steady + [0] * 4 + [1200] * 2 + [0] * 4) is None
    # Stats not reported (null) say nothing either way.
    assert await _first_silent(page, steady + [None] * 10) is None


async def test_a_page_that_receives_no_media_is_never_silent(browser: Any) -> None:
    """Alone in the call: a receiver report, an ICE check now and then, no RTP."""
    page = await browser.new_page()
    await page.set_content("<!doctype html><title>t</title>")
    await page.add_script_tag(content=SCRIPT.read_text())
    sparse = [100, 0, 0, 80, 0] * 8
    assert await _first_silent(page, sparse + [0] * 20) is None
    # Bytes in every poll but no media (RTCP only): never steady either.
    assert await _first_silent(page, [300] * 12 + [0] * 20, [0] * 32) is None
    # The first poll is only where counting starts: no media seen arriving yet.
    assert await _first_silent(page, [1200] + [0] * 20) is None
    # Media that stopped a while before the transport went quiet (its RTCP went on).
    assert await _first_silent(page, [1200] * 6 + [300] * 4 + [0] * 20, [25] * 6 + [0] * 24) is None


async def test_a_new_connection_with_a_second_of_media_is_watched_already(
    browser: Any,
) -> None:
    """A new address right after a short cut's reconnect: the new connection had media
    for about a second (measured: with two seconds of history asked for, the page waited
    for the browser's "disconnected", 9.3 s; with a 15 s pause between two recoveries,
    for its "failed", 19.6 s)."""
    page = await browser.new_page()
    await page.set_content("<!doctype html><title>t</title>")
    await page.add_script_tag(content=SCRIPT.read_text())
    assert await _first_silent(page, [400] + [1200] * 2 + [0] * 8) == (2 + 5) * 500
