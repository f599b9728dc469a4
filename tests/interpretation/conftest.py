"""Fixtures for the interpretation tests: tiny Argos packages, Korean speech, Vosk model."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from interpretation.glossary import GlossaryStore
from interpretation.packages import PackageStore, configure_argos_environment
from interpretation.recognizer import SpeechModels
from interpretation.translator import Translator
from tests.interpretation.argos_fixture import build_argos_package
from tests.interpretation.speech_fixture import korean_wav


def pytest_configure(config: pytest.Config) -> None:
    # argostranslate reads its directories when first imported: keep it out of $HOME
    configure_argos_environment(Path(tempfile.mkdtemp(prefix="argos-test-")))


@pytest.fixture(scope="session")
def argos_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """``.argosmodel`` files for ko->en, en->ja and en->ko (no direct ko->ja)."""
    dest = tmp_path_factory.mktemp("argos-archives")
    return {
        pair: build_argos_package(dest, *pair, seed=i)
        for i, pair in enumerate([("ko", "en"), ("en", "ja"), ("en", "ko")])
    }


@pytest.fixture
def package_store(tmp_path: Path, argos_archives: dict[tuple[str, str], Path]) -> PackageStore:
    store = PackageStore(tmp_path / "argos" / "packages")
    for archive in argos_archives.values():
        store.install(archive)
    return store


@pytest.fixture
def glossary_store(tmp_path: Path) -> GlossaryStore:
    return GlossaryStore(tmp_path / "glossary.json")


@pytest.fixture
async def translator(
    package_store: PackageStore, glossary_store: GlossaryStore
) -> AsyncIterator[Translator]:
    t = Translator(package_store, glossary_store)
    yield t
    await t.aclose()


@pytest.fixture(scope="session")
def korean_speech(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 16 kHz mono WAV of a Korean sentence spoken by espeak-ng."""
    yield korean_wav(tmp_path_factory.mktemp("speech") / "ko.wav")


@pytest.fixture(scope="session")
def speech_models() -> SpeechModels:
    """The process-wide model registry; the Korean model loads once per test session."""
    models = SpeechModels()
    models.get("ko")
    return models
