"""The room's codecs: what the server offers, so that forwarding never needs a transcode.

An SFU that forwards encoded frames needs every publisher and subscriber of a
room to share one video codec (and Opus for audio). All of Chromium, Firefox and
Safari decode and encode VP8 and H.264 constrained baseline, so the room picks
the first codec of ``VIDEO_PREFERENCE`` that every participant supports and the
server offers only that codec (plus its RTX) on every transceiver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability

from media.errors import MediaError

#: Video codecs in the order the server prefers them (VP8: cheapest to handle, all browsers).
VIDEO_PREFERENCE: Final = ("VP8", "H264")
AUDIO_CODEC: Final = "opus"


class CodecMismatchError(MediaError):
    """A room's participants share no codec the server can forward."""

    code: ClassVar[str] = "codec_unsupported"


@dataclass(frozen=True)
class RoomCodecs:
    """The codec every publication and subscription in one room uses."""

    video: str = "VP8"
    audio: str = AUDIO_CODEC

    def for_kind(self, kind: str) -> str:
        return self.video if kind == "video" else self.audio


def _name(mime_or_name: str) -> str:
    return mime_or_name.rsplit("/", 1)[-1].upper()


def choose_video_codec(supported: Mapping[str, Iterable[str]]) -> str:
    """Pick the room's video codec from each participant's supported codec names.

    ``supported`` maps a participant id to codec names or MIME types (for a
    browser: ``RTCRtpReceiver.getCapabilities('video').codecs`` intersected with
    the sender's). Raises ``CodecMismatchError`` naming who lacks what.
    """
    names = {pid: {_name(c) for c in codecs} for pid, codecs in supported.items()}
    for candidate in VIDEO_PREFERENCE:
        if all(candidate in have for have in names.values()):
            return candidate
    detail = "; ".join(
        f"{pid} supports {', '.join(sorted(have)) or 'no video codec'}"
        for pid, have in sorted(names.items())
    )
    raise CodecMismatchError(
        f"no common video codec among {', '.join(VIDEO_PREFERENCE)}: {detail}. "
        "Ask the participant to use a current Chrome, Firefox, Edge or Safari."
    )


def codec_preferences(kind: str, codec: str) -> list[RTCRtpCodecCapability]:
    """aiortc capabilities limited to ``codec`` (every profile of it) and RTX."""
    wanted = _name(codec)
    chosen = [
        c for c in RTCRtpSender.getCapabilities(kind).codecs if _name(c.mimeType) in (wanted, "RTX")
    ]
    if not any(_name(c.mimeType) == wanted for c in chosen):
        raise CodecMismatchError(f"the server cannot negotiate {kind} codec {codec!r}")
    return chosen


def apply_room_codecs(
    pc: RTCPeerConnection, codecs: RoomCodecs, *, publish_rtx: bool = True
) -> None:
    """Limit every audio/video transceiver of ``pc`` to the room's codecs.

    ``publish_rtx=False`` leaves RTX out of what the server *receives* (its
    recvonly transceivers): a simulcast publisher then retransmits on each
    encoding's own SSRC, which needs no rid-to-RTX mapping the server cannot read.
    """
    for transceiver in pc.getTransceivers():
        if transceiver.kind in ("audio", "video"):
            preferences = codec_preferences(transceiver.kind, codecs.for_kind(transceiver.kind))
            if not publish_rtx and transceiver.direction == "recvonly":
                preferences = [c for c in preferences if _name(c.mimeType) != "RTX"]
            transceiver.setCodecPreferences(preferences)


def same_codec(a: str, b: str) -> bool:
    """Whether two MIME types or names denote one codec (``video/VP8`` == ``vp8``)."""
    return _name(a) == _name(b)


def check_participant(room: RoomCodecs, participant_id: str, codecs: Iterable[str]) -> None:
    """Raise ``CodecMismatchError`` if a joining participant cannot use the room's codecs.

    ``codecs``: names or MIME types the participant's browser can both send and receive.
    """
    have = {_name(c) for c in codecs}
    missing = [c for c in (room.video, room.audio) if _name(c) not in have]
    if missing:
        raise CodecMismatchError(
            f"{participant_id} cannot use this room's {' and '.join(missing)} "
            f"(it supports {', '.join(sorted(have)) or 'nothing'}); "
            "join from a current Chrome, Firefox, Edge or Safari."
        )
