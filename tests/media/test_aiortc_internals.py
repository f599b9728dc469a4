"""Fails loudly when aiortc changes under media.aiortc_internals."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import sfu_loopback

from media.aiortc_internals import (
    SUPPORTED_AIORTC,
    AiortcVersionError,
    check_aiortc_version,
    missing_attributes,
)


def test_installed_aiortc_is_the_version_the_internals_were_written_for() -> None:
    low, high = SUPPORTED_AIORTC
    major, minor = (int(x) for x in version("aiortc").split(".")[:2])
    assert low <= (major, minor) < high, (
        f"aiortc {version('aiortc')} is installed but media/aiortc_internals.py was written "
        f"for {low}..{high}: re-audit every private attribute it uses"
    )
    check_aiortc_version()


@pytest.mark.parametrize("other", ["1.15.0", "1.17.0", "2.0.0"])
def test_other_versions_are_refused(other: str) -> None:
    with pytest.raises(AiortcVersionError, match="written for aiortc"):
        check_aiortc_version(other)


async def test_every_private_attribute_used_exists() -> None:
    pc = sfu_loopback.new_pc()
    try:
        transceiver = pc.addTransceiver("video", direction="sendrecv")
        missing = missing_attributes(transceiver.receiver, transceiver.sender, transceiver)
        assert missing == [], f"aiortc changed: {missing}"
    finally:
        await pc.close()
