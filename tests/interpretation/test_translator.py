"""Translation through a real (tiny, random) Argos package: install, direct, pivot, batch."""

from __future__ import annotations

import asyncio
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from interpretation.errors import PackageError, ShuttingDown, TranslationFailed
from interpretation.packages import PackageStore
from interpretation.translator import RESCAN_S, PairModel, Translator, split_sentences
from interpretation.workers import WorkerThreads

TEXT = "안녕하세요 저는 일본에 살고 있습니다"


def test_install_from_file_and_list(
    tmp_path: Path, argos_archives: dict[tuple[str, str], Path]
) -> None:
    store = PackageStore(tmp_path / "packages")
    info = store.install(argos_archives[("ko", "en")])
    assert info.pair == ("ko", "en")
    assert (info.path / "model" / "model.bin").is_file()
    assert [p.pair for p in store.list()] == [("ko", "en")]
    assert store.list()[0].from_name == "Korean"
    # installing again replaces, not duplicates
    store.install(argos_archives[("ko", "en")])
    assert [p.pair for p in store.list()] == [("ko", "en")]


def test_install_refuses_what_is_not_a_package(tmp_path: Path) -> None:
    store = PackageStore(tmp_path / "packages")
    bogus = tmp_path / "x.argosmodel"
    bogus.write_text("not a zip")
    with pytest.raises(PackageError, match="zip"):
        store.install(bogus)
    with zipfile.ZipFile(bogus, "w") as zf:
        zf.writestr("p/metadata.json", '{"from_code": "ko", "to_code": "en"}')
    with pytest.raises(PackageError, match="model"):
        store.install(bogus)
    with pytest.raises(PackageError, match="no such file"):
        store.install(tmp_path / "missing.argosmodel")
    assert store.list() == []


def test_sentence_splitting_needs_no_model() -> None:
    assert split_sentences("안녕하세요 저는 일본에 살고 있습니다") == [TEXT]
    assert split_sentences("Hello. How are you? Fine!") == ["Hello.", "How are you?", "Fine!"]
    assert split_sentences("こんにちは。元気です。") == ["こんにちは。", "元気です。"]


async def test_translates_directly(translator: Translator, package_store: PackageStore) -> None:
    out = await translator.translate(TEXT, "ko", "en")
    assert out and out != TEXT
    info = package_store.find("ko", "en")
    assert info is not None
    assert out == PairModel(info).translate([TEXT])[0]
    assert await translator.translate(TEXT, "ko", "en") == out  # deterministic
    # the network-bound MiniSBD splitter was never loaded
    assert "minisbd" not in sys.modules


async def test_pivots_through_english(translator: Translator) -> None:
    assert await translator.route("ko", "ja") == [("ko", "en"), ("en", "ja")]
    english = await translator.translate(TEXT, "ko", "en")
    assert english is not None
    direct_ja = await translator.translate(english, "en", "ja")
    assert await translator.translate(TEXT, "ko", "ja") == direct_ja


async def test_no_route_gives_none(translator: Translator) -> None:
    assert await translator.route("ko", "ru") is None
    assert await translator.translate(TEXT, "ko", "ru") is None
    many = await translator.translate_many(TEXT, "ko", ["en", "ja", "ru", "ko"])
    # (batched decoding of a random model may differ in near-ties, so only shape is checked)
    assert sorted(many) == ["en", "ja"]
    assert all(many.values())


async def test_concurrent_requests_are_batched(translator: Translator) -> None:
    await translator.translate("준비", "ko", "en")  # load the model first
    translator.batch_sizes.clear()
    texts = [f"{TEXT} {i}" for i in range(12)]
    outs = await asyncio.gather(*(translator.translate(t, "ko", "en") for t in texts))
    assert all(outs)
    assert max(translator.batch_sizes) > 1
    assert len(translator.batch_sizes) < len(texts)


async def test_glossary_terms_stay_consistent(translator: Translator) -> None:
    out = await translator.translate("가족관계증명서를 발급받고 싶습니다", "ko", "en")
    assert out is not None and "family relation certificate" in out
    out = await translator.translate("국적 문제로 상담하고 싶습니다", "ko", "ja")
    assert out is not None and "国籍" in out


async def test_packages_installed_while_running_are_picked_up(
    tmp_path: Path, argos_archives: dict[tuple[str, str], Path]
) -> None:
    now = [0.0]
    store = PackageStore(tmp_path / "packages")
    translator = Translator(store, clock=lambda: now[0])
    try:
        assert await translator.translate(TEXT, "ko", "en") is None
        store.install(argos_archives[("ko", "en")])
        assert await translator.translate(TEXT, "ko", "en") is None  # not rescanned yet
        now[0] += RESCAN_S + 1
        assert await translator.translate(TEXT, "ko", "en")
    finally:
        await translator.aclose()


async def test_a_broken_package_fails_its_targets_and_spares_the_others(
    package_store: PackageStore,
) -> None:
    info = package_store.find("en", "ja")
    assert info is not None
    (info.path / "model" / "model.bin").write_bytes(b"not a ctranslate2 model")
    translator = Translator(package_store)
    try:
        with pytest.raises(TranslationFailed, match=r"en -> ja .*seoulbridge models install"):
            await translator.translate(TEXT, "ko", "ja")
        many = await translator.translate_many(TEXT, "ko", ["en", "ja"])
        assert sorted(many) == ["en"] and many["en"]
    finally:
        await translator.aclose()


async def test_closing_fails_waiting_requests_instead_of_cancelling_their_callers(
    package_store: PackageStore,
) -> None:
    workers = WorkerThreads("translate-test", 1)
    translator = Translator(package_store, workers=workers)
    release = threading.Event()
    assert await translator.translate(TEXT, "ko", "en")  # pairs scanned, model loaded
    busy = asyncio.ensure_future(workers.run(release.wait, 20))  # the only thread is taken
    try:
        waiting = asyncio.ensure_future(translator.translate(TEXT, "ko", "en"))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        await translator.aclose()
        with pytest.raises(ShuttingDown):
            await waiting
        with pytest.raises(ShuttingDown):
            await translator.translate(TEXT, "ko", "en")
    finally:
        release.set()
        await busy
        await workers.aclose()
