"""Which Chromium the browser tests start (Playwright's ``executable_path``).

``$SEOULBRIDGE_CHROMIUM`` (else Debian's ``/usr/bin/chromium``) is the browser. As
root, with ``setpriv`` (util-linux) at hand, it is started through
``chromium_as_a_user.sh``, which takes away ``CAP_SYS_NICE``: as root Chromium
raises its renderers to nice -8 and its audio threads to real time and, on two cores,
starves the server under test (see the script). Anyone else runs it directly; the
browser cannot raise its priority then anyway.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: the browser itself (for "is it installed?")
REAL_CHROMIUM = os.environ.get("SEOULBRIDGE_CHROMIUM", "/usr/bin/chromium")
AS_A_USER = Path(__file__).with_name("chromium_as_a_user.sh")


def _executable() -> str:
    if not Path(REAL_CHROMIUM).exists():
        return REAL_CHROMIUM  # the tests skip, saying it is missing
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return str(AS_A_USER)
    return REAL_CHROMIUM


#: what to give Playwright as ``executable_path``
CHROMIUM = _executable()
