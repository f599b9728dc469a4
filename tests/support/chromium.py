"""Which Chromium the browser tests start (Playwright's ``executable_path``).

``$SEOULBRIDGE_CHROMIUM`` (else Debian's ``/usr/bin/chromium``) is the browser. It is
started through ``chromium_as_a_user.sh``: at nice 10, below the server under test (in
production the server has its own CPU), and as root without ``CAP_SYS_NICE``, which
Chromium would use to raise its renderers to nice -8 and its audio threads to real
time, starving the server on two cores (see the script).
"""

from __future__ import annotations

import os
from pathlib import Path

#: the browser itself (for "is it installed?")
REAL_CHROMIUM = os.environ.get("SEOULBRIDGE_CHROMIUM", "/usr/bin/chromium")
AS_A_USER = Path(__file__).with_name("chromium_as_a_user.sh")


def _executable() -> str:
    if not Path(REAL_CHROMIUM).exists():
        return REAL_CHROMIUM  # the tests skip, saying it is missing
    return str(AS_A_USER)


#: what to give Playwright as ``executable_path``
CHROMIUM = _executable()

#: The flags every test browser starts with (headless in a container, fake camera and
#: microphone, nothing fetched from the network at run time).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
