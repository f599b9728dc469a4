"""When a datagram reached this host, from the kernel, instead of when the loop read it.

The server's estimate of each publisher's uplink (``media.remb_feed``, libwebrtc's
delay-based estimator) compares the spread of packets' send times with the spread of
their arrivals. Taken when the event loop reads the datagram, an arrival also carries
the time the packet waited for a busy loop, or for a process the machine did not
schedule: the estimator takes that wait for a queue on the publisher's uplink and tells
the browser to send less. In the poor-link test (three browsers and the server on two
cores, load 7-11) the REMB sent to the two publishers on loopback fell 14-30 times a
call, by more than 30 % 6-15 times (931 -> 522 kbit/s); once the interpreter's browser
encoded only its 240-line layer ("bandwidth") while the counselor, on loopback too,
should have had 480 lines. With the kernel's times: 5-21 falls a call (4 calls).

The kernel stamps each received datagram (``SIOCGSTAMP``: the receive time of the last
datagram read from the socket, once the first call has switched stamping on); that is
read right after the datagram, in its ``datagram_received``, for about 2.5 us. Linux
only; elsewhere, or when the kernel has no stamp, the arrival is the loop's time as
before.
"""

from __future__ import annotations

import errno
import fcntl
import struct
import sys
from typing import Final

from media.aiortc_internals import _NTP_UNIX_OFFSET_MS

#: ``SIOCGSTAMP`` (``SIOCGSTAMP_OLD`` on 64-bit kernels): a ``struct timeval``.
_SIOCGSTAMP: Final = 0x8906
_TIMEVAL: Final = struct.Struct("@ll")
_BUFFER: Final = bytes(_TIMEVAL.size)
#: A stamp older than this is not the datagram just read (or the clock stepped): not used.
MAX_AGE_MS: Final = 2000


def enable(fd: int) -> bool:
    """Switch the kernel's receive stamps on for socket ``fd``; whether it has them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fcntl.ioctl(fd, _SIOCGSTAMP, _BUFFER)
    except OSError as exc:
        return exc.errno == errno.ENOENT  # nothing received yet: stamping is on from now
    return True


def arrival_ms(fd: int, now: int) -> int:
    """When the datagram just read from ``fd`` arrived, in ``now``'s clock (aiortc's ms
    since the NTP epoch, ``aiortc_internals.now_ms``); ``now`` when that is not known."""
    try:
        sec, usec = _TIMEVAL.unpack(fcntl.ioctl(fd, _SIOCGSTAMP, _BUFFER))
    except (OSError, ValueError):  # no stamp, or not an open socket
        return now
    stamp: int = sec * 1000 + usec // 1000 + _NTP_UNIX_OFFSET_MS
    if stamp > now or now - stamp > MAX_AGE_MS:
        return now
    return stamp
