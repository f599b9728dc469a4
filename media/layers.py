"""Simulcast encodings and VP8 temporal layers: what a publication offers, what a subscriber gets.

``LayerTracker`` (one per video publication) looks at every received packet
once: which encoding (SSRC) it belongs to, its VP8 descriptor, keyframes and
their sizes, and the bytes per encoding and temporal layer, from which it
reports each encoding's bitrate. ``LayerSelector`` (one per video subscription)
is the per-packet admission of mediasoup's ``SimulcastConsumer``: it forwards
one encoding and the temporal layers up to a target, switches encoding only at
a keyframe of the new one (asking the publisher for it), steps a temporal layer
up only at a layer-sync frame, and renumbers sequence numbers, timestamps,
picture ids and TL0PICIDX so the subscriber sees one continuous stream.

Which target each subscriber gets is decided elsewhere (``media.allocation``),
a few times a second; nothing here runs a task or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from media.keyframes import is_keyframe_start
from media.rtp_header import WIRE_OVERHEAD, RtpView
from media.vp8 import Vp8Descriptor, parse_vp8, rewrite_vp8

__all__ = ["ALL_TEMPORAL", "Encoding", "LayerSelector", "LayerTracker", "SeqMap"]

#: A temporal target that admits every layer.
ALL_TEMPORAL: Final = 3
#: An encoding with no packet for this long is gone (the publisher turned it off).
INACTIVE_MS: Final = 2000
_TS_MASK: Final = 0xFFFFFFFF


class SeqMap:
    """Numbering of one input sequence in which some inputs are dropped.

    Forwarded inputs keep their order and leave no gap; an input that arrives
    late (a retransmission, reordering) gets the number its position had, and
    a late copy of a dropped input is dropped again (mediasoup's ``SeqManager``).
    """

    __slots__ = ("_half", "_mask", "_max_in", "_offset", "_ring_in", "_ring_off", "_wmask")

    def __init__(self, bits: int, window: int = 1024) -> None:
        self._mask = (1 << bits) - 1
        self._half = 1 << (bits - 1)
        self._wmask = window - 1
        self._offset = 0
        self._max_in = 0
        self._ring_in: list[int] = [-1] * window
        self._ring_off: list[int | None] = [None] * window

    def start(self, first_in: int, first_out: int) -> None:
        """The next forwarded input ``first_in`` becomes ``first_out``; forget the past."""
        self._max_in = (first_in - 1) & self._mask
        self._offset = (first_out - first_in) & self._mask
        window = len(self._ring_in)
        self._ring_in = [-1] * window
        self._ring_off = [None] * window

    def is_new(self, n: int) -> bool:
        """Whether ``n`` is ahead of every input seen so far."""
        d = (n - self._max_in) & self._mask
        return 0 < d < self._half

    def _advance(self, n: int, d: int) -> None:
        window = len(self._ring_in)
        for k in range(max(1, d - window), d):  # skipped inputs keep their place
            m = (self._max_in + k) & self._mask
            self._ring_in[m & self._wmask] = m
            self._ring_off[m & self._wmask] = self._offset
        self._max_in = n

    def _arrive(self, n: int) -> bool:
        """Whether ``n`` is ahead of every input so far; if so it becomes the newest."""
        d = (n - self._max_in) & self._mask
        if not 0 < d < self._half:
            return False
        if d > 1:
            self._advance(n, d)
        else:
            self._max_in = n
        return True

    def forward(self, n: int) -> int | None:
        """The output number of input ``n``; None if it was dropped or is too old."""
        i = n & self._wmask
        if self._arrive(n):
            self._ring_in[i] = n
            self._ring_off[i] = self._offset
            return (n + self._offset) & self._mask
        if self._ring_in[i] != n:
            return None
        offset = self._ring_off[i]
        return None if offset is None else (n + offset) & self._mask

    def drop(self, n: int) -> None:
        """Input ``n`` is not forwarded: later inputs close up behind it."""
        i = n & self._wmask
        if self._arrive(n):
            self._offset = (self._offset - 1) & self._mask
        self._ring_in[i] = n
        self._ring_off[i] = None


class Encoding:
    """One received encoding (simulcast layer) of a publication."""

    __slots__ = (
        "_bytes",
        "_frames",
        "fps",
        "height",
        "last_ms",
        "rates",
        "ssrc",
        "temporal",
        "width",
    )

    def __init__(self, ssrc: int) -> None:
        self.ssrc = ssrc
        self.width = 0
        self.height = 0
        self.last_ms = 0
        #: Temporal layers seen (1 when the stream has no temporal scalability).
        self.temporal = 1
        self._bytes = [0, 0, 0, 0]
        #: Bit/s of temporal layers 0..t together, per t (wire size, smoothed).
        self.rates = [0.0, 0.0, 0.0, 0.0]
        self._frames = [0, 0, 0, 0]
        #: Frames per second of temporal layers 0..t together, per t (smoothed).
        self.fps = [0.0, 0.0, 0.0, 0.0]

    def frame_rate(self, temporal: int) -> float:
        return self.fps[min(temporal, self.temporal - 1)]

    def rate(self, temporal: int) -> float:
        return self.rates[min(temporal, self.temporal - 1)]

    def __repr__(self) -> str:
        return f"Encoding({self.ssrc}, {self.width}x{self.height}, T{self.temporal}, {self.rates})"


class LayerTracker:
    """The encodings of one video publication, fed with every received packet."""

    def __init__(self, codec_name: Callable[[], str | None]) -> None:
        self._codec_name = codec_name
        self._encodings: dict[int, Encoding] = {}
        #: Active encodings, narrowest first (by keyframe width), as of the last ``refresh``.
        self.layers: list[Encoding] = []
        #: The descriptor and keyframe flag of the packet being forwarded (``observe``).
        self.info: Vp8Descriptor | None = None
        self.keyframe = False
        self._last_refresh_ms: int | None = None

    def observe(self, packet: RtpView, arrival_ms: int) -> None:
        """Called once per received packet, before it is offered to any subscriber."""
        encoding = self._encodings.get(packet.ssrc)
        if encoding is None:
            encoding = self._encodings[packet.ssrc] = Encoding(packet.ssrc)
        encoding.last_ms = arrival_ms
        codec = self._codec_name() or ""
        size = len(packet.payload) + WIRE_OVERHEAD
        if codec.upper() == "VP8":
            info = parse_vp8(packet.payload)
            self.info = info
            if info is None:
                self.keyframe = False
                encoding._bytes[0] += size
                return
            self.keyframe = info.keyframe
            tid = info.tid
            if tid >= 0:
                encoding._bytes[tid] += size
                if info.start:
                    encoding._frames[tid] += 1
                if tid >= encoding.temporal:
                    encoding.temporal = tid + 1
            else:
                encoding._bytes[0] += size
                if info.start:
                    encoding._frames[0] += 1
            if info.width and (info.width != encoding.width or info.height != encoding.height):
                encoding.width, encoding.height = info.width, info.height
                self._sort()
        else:
            self.info = None
            self.keyframe = is_keyframe_start(codec, packet.payload)
            encoding._bytes[0] += size
            if packet.marker:
                encoding._frames[0] += 1

    def refresh(self, now_ms: int) -> None:
        """Turn byte counts into bitrates and drop encodings that stopped (a few times a second)."""
        last = self._last_refresh_ms
        self._last_refresh_ms = now_ms
        if last is None or now_ms <= last:
            for encoding in self._encodings.values():
                encoding._bytes = [0, 0, 0, 0]
                encoding._frames = [0, 0, 0, 0]
            return
        dt = (now_ms - last) / 1000
        alpha = min(1.0, dt / 1.5)
        for encoding in self._encodings.values():
            cumulative = 0.0
            frames = 0.0
            for t in range(4):
                cumulative += encoding._bytes[t] * 8 / dt
                encoding.rates[t] += alpha * (cumulative - encoding.rates[t])
                frames += encoding._frames[t] / dt
                encoding.fps[t] += alpha * (frames - encoding.fps[t])
            encoding._bytes = [0, 0, 0, 0]
            encoding._frames = [0, 0, 0, 0]
        for ssrc in [s for s, e in self._encodings.items() if now_ms - e.last_ms > INACTIVE_MS * 5]:
            del self._encodings[ssrc]
        self._sort(now_ms)

    def _sort(self, now_ms: int | None = None) -> None:
        encodings = list(self._encodings.values())
        if now_ms is not None:
            encodings = [e for e in encodings if now_ms - e.last_ms <= INACTIVE_MS]
        self.layers = sorted(encodings, key=lambda e: (e.width * e.height, e.rates[3]))

    def ssrcs(self) -> list[int]:
        """Every encoding seen recently, in no particular order."""
        return list(self._encodings)

    def best_ssrc(self) -> int | None:
        """The widest encoding that arrives, or None before any is known."""
        return self.layers[-1].ssrc if self.layers else None

    def encoding(self, ssrc: int) -> Encoding | None:
        return self._encodings.get(ssrc)


class Numbering(Protocol):
    """What a sender last put on the wire (``rtp_forwarder._NumberingState``)."""

    last_seq: int | None
    last_ts: int | None
    last_time: float


class LayerSelector:
    """Which packets of a video publication one subscriber gets, renumbered.

    ``set_target`` (from the allocator) names the encoding and the highest
    temporal layer to forward, or pauses; ``admit`` (per packet) applies it.
    """

    def __init__(
        self,
        tracker: LayerTracker,
        numbering: Numbering,
        clock_rate: int,
        request_keyframe: Callable[[int | None], None],
    ) -> None:
        self._tracker = tracker
        self._numbering = numbering
        self._clock_rate = clock_rate
        self._request_keyframe = request_keyframe
        self._seq = SeqMap(16)
        self._pid = SeqMap(15, window=256)
        self._pid_bits = 15
        self._ts_offset = 0
        self._tl0_offset = 0
        self._last_pid = -1
        self._last_tl0 = -1
        self._last_marker = True
        #: What the allocator asks for. ``target_ssrc`` None: the widest encoding there is.
        self.target_ssrc: int | None = None
        self.target_temporal = ALL_TEMPORAL
        self.paused = False
        #: What is being forwarded now.
        self.current_ssrc: int | None = None
        self.current_temporal = ALL_TEMPORAL
        self.switches = 0
        self.dropped = 0
        #: VP8 pictures forwarded (counted at their first packet seen).
        self.frames = 0

    # -- control ---------------------------------------------------------------------
    def set_target(self, ssrc: int | None, temporal: int = ALL_TEMPORAL) -> None:
        """Forward encoding ``ssrc`` up to temporal layer ``temporal`` from its next keyframe."""
        self.paused = False
        self.target_temporal = temporal
        if ssrc != self.target_ssrc:
            self.target_ssrc = ssrc
            if ssrc is not None and ssrc != self.current_ssrc:
                self._request_keyframe(ssrc)
        if self.current_ssrc is None:
            self._request_keyframe(ssrc)

    def pause(self) -> None:
        """Forward nothing until the next ``set_target`` (which resumes at a keyframe)."""
        self.paused = True
        self.current_ssrc = None

    def restart(self) -> None:
        """The sender was not ready, nothing went out: start afresh at the next keyframe."""
        self.current_ssrc = None
        self._last_pid = -1
        self._last_tl0 = -1
        self._last_marker = True

    def skip(self, packet: RtpView) -> None:
        """A padding-only packet of the publisher: leave no gap for it in the numbering."""
        if packet.ssrc == self.current_ssrc:
            self._seq.drop(packet.sequence_number)

    def keyframe_wanted(self) -> None:
        """The subscriber lost the picture (PLI/FIR): ask for a keyframe of what it gets."""
        self._request_keyframe(
            self.current_ssrc if self.current_ssrc is not None else self.target_ssrc
        )

    @property
    def switching(self) -> bool:
        return self.target_ssrc is not None and self.target_ssrc != self.current_ssrc

    # -- per packet ------------------------------------------------------------------
    def admit(self, packet: RtpView, now: float) -> tuple[RtpView, int, int] | None:
        """(packet to send, sequence number, timestamp), or None to drop it for this subscriber."""
        tracker = self._tracker
        ssrc = packet.ssrc
        if ssrc != self.current_ssrc:
            if self.paused:
                return None
            target = self.target_ssrc if self.target_ssrc is not None else tracker.best_ssrc()
            if target is not None and ssrc != target:
                # Another encoding than the one wanted: not ours, and no reason to ask
                # for a keyframe (asking here, for every packet of the other encodings,
                # had every publisher send a keyframe of every encoding twice a second).
                self.dropped += 1
                return None
            if tracker.keyframe:
                self._switch(packet, now)
            else:
                self.dropped += 1
                self._request_keyframe(target)  # the one wanted, waiting for its keyframe
                return None
        info = tracker.info
        seq_map = self._seq
        view = packet
        if info is not None and info.pid_bits:
            pid_map = self._pid
            pid = info.picture_id
            if pid_map.is_new(pid):
                if not self._take_frame(info):
                    pid_map.drop(pid)
                    seq_map.drop(packet.sequence_number)
                    self.dropped += 1
                    return None
                self.frames += 1
            pid_out = pid_map.forward(pid)
            if pid_out is None:
                seq_map.drop(packet.sequence_number)
                self.dropped += 1
                return None
            tl0_out = (info.tl0 + self._tl0_offset) & 0xFF if info.tl0 >= 0 else -1
            if pid_out != pid or tl0_out != info.tl0:
                view = RtpView(
                    packet.payload_type,
                    packet.marker,
                    packet.sequence_number,
                    packet.timestamp,
                    ssrc,
                    rewrite_vp8(packet.payload, info, pid_out, tl0_out),
                    abs_send_time=packet.abs_send_time,
                    audio_level=packet.audio_level,
                )
            pid_mask = (1 << self._pid_bits) - 1
            if self._last_pid < 0 or (pid_out - self._last_pid) & pid_mask <= pid_mask >> 1:
                self._last_pid = pid_out
                if tl0_out >= 0:
                    self._last_tl0 = tl0_out
        seq = seq_map.forward(packet.sequence_number)
        if seq is None:
            return None
        numbering = self._numbering
        if numbering.last_seq is None or (seq - numbering.last_seq) & 0xFFFF < 0x8000:
            self._last_marker = bool(packet.marker)
        return view, seq, (packet.timestamp + self._ts_offset) & _TS_MASK

    def _take_frame(self, info: Vp8Descriptor) -> bool:
        """The temporal-layer decision for a new frame (mediasoup's VP8 ``Encode``)."""
        target = self.target_temporal
        if info.keyframe:
            self.current_temporal = target
            return True
        if self.current_temporal > target:
            self.current_temporal = target
        tid = info.tid
        if tid <= self.current_temporal:
            return True
        if tid <= target and info.sync:
            self.current_temporal = tid
            return True
        return False

    def _switch(self, packet: RtpView, now: float) -> None:
        """Start forwarding ``packet``'s encoding at this keyframe, continuing the numbering."""
        numbering = self._numbering
        if numbering.last_seq is None or numbering.last_ts is None:
            next_seq = packet.sequence_number
            next_ts = packet.timestamp
        else:
            # An unfinished frame of the old encoding is left one number short, so the
            # subscriber sees it as incomplete instead of waiting for its end.
            next_seq = (numbering.last_seq + (1 if self._last_marker else 2)) & 0xFFFF
            elapsed = max(now - numbering.last_time, 1 / 30)
            next_ts = (numbering.last_ts + int(elapsed * self._clock_rate)) & _TS_MASK
        self._seq.start(packet.sequence_number, next_seq)
        self._ts_offset = (next_ts - packet.timestamp) & _TS_MASK
        info = self._tracker.info
        if info is not None and info.pid_bits:
            if info.pid_bits != self._pid_bits:
                self._pid_bits = info.pid_bits
                self._pid = SeqMap(info.pid_bits, window=64 if info.pid_bits == 7 else 256)
            mask = (1 << info.pid_bits) - 1
            first = (self._last_pid + 1) & mask if self._last_pid >= 0 else info.picture_id
            self._pid.start(info.picture_id, first)
            if info.tl0 >= 0:
                self._tl0_offset = (
                    (self._last_tl0 + 1 - info.tl0) & 0xFF if self._last_tl0 >= 0 else 0
                )
        self.current_ssrc = packet.ssrc
        self.current_temporal = self.target_temporal
        self.switches += 1
