"""Korean test speech made by espeak-ng, as a WAV that Chromium and Vosk both accept."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

KOREAN_SENTENCE = "안녕하세요. 가족관계증명서를 발급받고 싶습니다."


def korean_wav(
    path: Path, text: str = KOREAN_SENTENCE, *, rate: int = 16_000, pad_s: float = 0.5
) -> Path:
    """Speak ``text`` with espeak-ng into a mono s16le WAV at ``rate``.

    ``pad_s`` seconds of silence follow the speech, so an endpoint can be found.
    """
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        raise RuntimeError("espeak-ng and sox are needed to make test speech")
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), text], check=True)
    subprocess.run(
        [
            "sox",
            str(raw),
            "-r",
            str(rate),
            "-c",
            "1",
            "-b",
            "16",
            str(path),
            "pad",
            "0.2",
            str(pad_s),
        ],
        check=True,
    )
    raw.unlink()
    return path


def wav_pcm(path: Path) -> bytes:
    """The s16le samples of a mono WAV."""
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.readframes(w.getnframes())
