from __future__ import annotations

import pytest

from media.codecs import CodecMismatchError, choose_video_codec, codec_preferences


def test_vp8_when_everyone_has_it() -> None:
    supported = {
        "chrome": ["video/VP8", "video/VP9", "video/H264", "video/AV1"],
        "firefox": ["video/VP8", "video/H264"],
        "safari": ["video/H264", "video/VP8", "video/HEVC"],
    }
    assert choose_video_codec(supported) == "VP8"


def test_h264_when_someone_lacks_vp8() -> None:
    supported = {"chrome": ["VP8", "H264"], "old-safari": ["video/H264"]}
    assert choose_video_codec(supported) == "H264"


def test_clear_error_when_no_common_codec() -> None:
    with pytest.raises(CodecMismatchError, match=r"old-device supports VP9"):
        choose_video_codec({"chrome": ["VP8"], "old-device": ["VP9"]})


def test_preferences_keep_every_profile_and_rtx() -> None:
    names = [c.mimeType for c in codec_preferences("video", "H264")]
    assert names.count("video/H264") == 2
    assert "video/rtx" in names
    assert "video/VP8" not in names
    assert [c.mimeType for c in codec_preferences("audio", "opus")] == ["audio/opus"]


def test_joiner_without_the_room_codec_is_refused_clearly() -> None:
    from media.codecs import RoomCodecs, check_participant

    check_participant(RoomCodecs(), "resident", ["video/VP8", "audio/opus"])
    with pytest.raises(CodecMismatchError, match=r"resident cannot use this room's VP8"):
        check_participant(RoomCodecs(), "resident", ["video/H264", "audio/opus"])
