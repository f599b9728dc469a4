"""Machine translation of final captions with Argos Translate packages.

Each installed package is loaded once (``argostranslate.package.Package`` for the
tokenizer, a CTranslate2 ``Translator`` with one thread for the model) and cached
per language pair. Pairs without a direct package pivot through English.
Concurrent requests for the same pair are batched into one ``translate_batch``
call on a worker thread; nothing blocks the event loop.

Ownership: the :class:`Translator` owns one ``serve`` task per language pair in
its ``TaskSet``. A request is a future the pair's task resolves; it always ends
with a result or an :class:`InterpretationError` (never a bare cancellation,
which the waiting caller would mistake for its own): a failed batch fails its
requests with :class:`TranslationFailed`, a pair task that dies fails what it
had queued, and ``aclose()`` fails whatever is left with :class:`ShuttingDown`.

Sentence splitting is ours and rule-based (punctuation), so no sentence-boundary
model is ever downloaded: Argos's default MiniSBD splitter fetches one from the
network on first use. Text without punctuation (what Vosk produces) is one sentence.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interpretation.coverage import route_between
from interpretation.errors import (
    InterpretationError,
    ModelNotAvailable,
    ShuttingDown,
    TranslationFailed,
)
from interpretation.events import Translations, Untranslated
from interpretation.glossary import GlossaryStore, contains_term, replace_terms
from interpretation.packages import PackageInfo, PackageStore, configure_argos_environment
from interpretation.workers import WorkerThreads
from kernel.taskset import TaskSet

log = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])\s*")
#: How long the list of installed pairs is trusted before the directory is re-read.
RESCAN_S = 30.0


def split_sentences(text: str) -> list[str]:
    """Split on sentence-final punctuation; text without any stays whole."""
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p]


class PairModel:
    """One package's tokenizer and CTranslate2 model. Blocking; used from worker threads."""

    def __init__(self, info: PackageInfo, *, beam_size: int = 2) -> None:
        configure_argos_environment(info.path.parent.parent)  # before the first import
        import ctranslate2
        from argostranslate.package import Package

        self.info = info
        self._package: Any = Package(info.path)
        if getattr(self._package, "tokenizer", None) is None:
            raise ModelNotAvailable(f"package {info.path} has no tokenizer model")
        self._translator: Any = ctranslate2.Translator(
            str(info.path / "model"), device="cpu", inter_threads=1, intra_threads=1
        )
        self._beam_size = beam_size
        self._prefix: str = getattr(self._package, "target_prefix", "") or ""

    def translate(self, sentences: list[str]) -> list[str]:
        if not sentences:
            return []
        tokenizer = self._package.tokenizer
        tokens = [tokenizer.encode(s) for s in sentences]
        prefix = [[self._prefix]] * len(tokens) if self._prefix else None
        longest = max(len(t) for t in tokens)
        results = self._translator.translate_batch(
            tokens,
            target_prefix=prefix,
            beam_size=self._beam_size,
            max_batch_size=64,
            replace_unknowns=True,
            length_penalty=0.2,
            max_decoding_length=min(256, 2 * longest + 16),
        )
        out: list[str] = []
        for result in results:
            value: str = tokenizer.decode(result.hypotheses[0])
            if self._prefix and value.startswith(self._prefix):
                value = value[len(self._prefix) :]
            out.append(value.strip())
        return out


@dataclass
class _Request:
    sentences: list[str]
    future: asyncio.Future[list[str]]


@dataclass
class _PairQueue:
    pair: tuple[str, str]
    queue: asyncio.Queue[_Request] = field(default_factory=asyncio.Queue)

    def fail_queued(self, error: InterpretationError) -> None:
        while not self.queue.empty():
            future = self.queue.get_nowait().future
            if not future.done():
                future.set_exception(error)


class Translator:
    """Translation service shared by every room of the process."""

    def __init__(
        self,
        store: PackageStore,
        glossary: GlossaryStore | None = None,
        *,
        workers: WorkerThreads | None = None,
        max_batch: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._glossary = glossary
        self._own_workers = workers is None
        self._workers = workers or WorkerThreads("translate")
        self._tasks = TaskSet("translator")
        self._max_batch = max_batch
        self._clock = clock
        self._models: dict[tuple[str, str], PairModel] = {}
        self._models_lock = threading.Lock()
        self._queues: dict[tuple[str, str], _PairQueue] = {}
        self._pairs: frozenset[tuple[str, str]] = frozenset()
        self._scanned_at: float | None = None
        self._fingerprint: frozenset[tuple[Any, ...]] = frozenset()
        self._closed = False
        #: sentences translated in each executor call, for tests and metrics
        self.batch_sizes: list[int] = []

    @property
    def packages_dir(self) -> Path:
        return self._store.packages_dir

    def _scan(self) -> tuple[frozenset[tuple[str, str]], frozenset[tuple[Any, ...]]]:
        infos = self._store.list()
        fingerprint = set()
        for info in infos:
            try:
                mtime = (info.path / "model" / "model.bin").stat().st_mtime_ns
            except OSError:
                mtime = 0
            fingerprint.add((info.pair, info.version, mtime))
        return frozenset(i.pair for i in infos), frozenset(fingerprint)

    async def _installed(self) -> frozenset[tuple[str, str]]:
        now = self._clock()
        if self._scanned_at is None or now - self._scanned_at > RESCAN_S:
            pairs, fingerprint = await self._workers.run(self._scan)
            if fingerprint != self._fingerprint:
                # a package was installed, replaced or removed: load models afresh
                with self._models_lock:
                    self._models.clear()
                self._fingerprint = fingerprint
            self._pairs = pairs
            self._scanned_at = now
        return self._pairs

    async def reload(self) -> None:
        """Forget the pair list and loaded models (after an install)."""
        self._scanned_at = None
        with self._models_lock:
            self._models.clear()
        await self._installed()

    async def installed_pairs(self) -> frozenset[tuple[str, str]]:
        """The installed packages as (from, to), re-read at most every ``RESCAN_S``."""
        return await self._installed()

    async def route(self, source: str, target: str) -> list[tuple[str, str]] | None:
        """The pairs to chain for ``source -> target``: direct, or through English."""
        return route_between(await self._installed(), source, target)

    async def translate(self, text: str, source: str, target: str) -> str | None:
        """``text`` in ``target``, or None when no package route exists."""
        route = await self.route(source, target)
        if route is None:
            return None
        if not route or not text.strip():
            return text
        glossary = self._glossary.get() if self._glossary is not None else None
        terms = glossary.matches(text, source, target) if glossary is not None else []
        current = replace_terms(text, terms, source)
        for pair in route:
            current = await self._translate_pair(current, pair)
        missing = [dst for _, dst in terms if not contains_term(current, dst, target)]
        if missing:
            current = f"{current} [{', '.join(missing)}]".strip()
        return current

    async def translate_many(
        self, text: str, source: str, targets: Iterable[str]
    ) -> dict[str, str]:
        """Translations into every target that has a route (see :meth:`translate_all`)."""
        return dict((await self.translate_all(text, source, targets)).texts)

    async def translate_all(self, text: str, source: str, targets: Iterable[str]) -> Translations:
        """Translations into every target, concurrently (so batched), and why any is missing.

        A target without a route is ``not_installed``; one whose translation fails is
        logged and ``failed``; the others are still returned. (``gather`` here awaits
        every child before returning, and cancels them all if the caller is
        cancelled, so none outlives the call.)
        """
        wanted = sorted({t for t in targets if t != source})
        results = await asyncio.gather(
            *(self.translate(text, source, t) for t in wanted), return_exceptions=True
        )
        out: dict[str, str] = {}
        missing: dict[str, Untranslated] = {}
        for target, result in zip(wanted, results, strict=True):
            if isinstance(result, InterpretationError):
                log.warning("translation %s -> %s left out: %s", source, target, result)
                missing[target] = Untranslated.FAILED
            elif isinstance(result, BaseException):
                raise result
            elif result is None:
                missing[target] = Untranslated.NOT_INSTALLED
            elif not result.strip() and text.strip():
                missing[target] = Untranslated.FAILED
            else:
                out[target] = result
        return Translations(out, missing)

    async def _translate_pair(self, text: str, pair: tuple[str, str]) -> str:
        if self._closed:
            raise ShuttingDown("the translator is closed: captions are shutting down")
        sentences = split_sentences(text) or [text]
        pq = self._queues.get(pair)
        if pq is None:
            pq = self._queues[pair] = _PairQueue(pair)
            self._tasks.spawn(self._serve(pq), name=f"serve {pair[0]}->{pair[1]}")
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        pq.queue.put_nowait(_Request(sentences, future))
        translated = await future
        return " ".join(t for t in translated if t)

    def _model(self, pair: tuple[str, str]) -> PairModel:
        with self._models_lock:
            model = self._models.get(pair)
            if model is None:
                info = self._store.find(*pair)
                if info is None:
                    raise ModelNotAvailable(f"no translation package {pair[0]} -> {pair[1]}")
                started = time.perf_counter()
                model = self._models[pair] = PairModel(info)
                log.info(
                    "loaded translation model %s -> %s in %.2fs",
                    *pair,
                    time.perf_counter() - started,
                )
            return model

    def _run_batch(self, pair: tuple[str, str], sentences: list[str]) -> list[str]:
        return self._model(pair).translate(sentences)

    async def _serve(self, pq: _PairQueue) -> None:
        """The pair's task: batch what is queued, translate it on a worker thread.

        However it ends, no request is left waiting: a cancellation fails them with
        ``ShuttingDown``, anything else with ``TranslationFailed`` (and the error
        reaches the task set's owner); the next request starts a fresh task.
        """
        batch: list[_Request] = []
        try:
            while True:
                batch = [await pq.queue.get()]
                while len(batch) < self._max_batch and not pq.queue.empty():
                    batch.append(pq.queue.get_nowait())
                await self._translate_batch(pq.pair, batch)
                batch = []
        except BaseException as exc:
            if self._queues.get(pq.pair) is pq:
                del self._queues[pq.pair]
            error: InterpretationError
            if isinstance(exc, asyncio.CancelledError):
                error = ShuttingDown("the translator is closed: captions are shutting down")
            else:
                error = TranslationFailed(
                    f"translation {pq.pair[0]} -> {pq.pair[1]} failed: {exc!r}"
                )
            _fail(batch, error)
            pq.fail_queued(error)
            raise

    async def _translate_batch(self, pair: tuple[str, str], batch: list[_Request]) -> None:
        sentences = [s for r in batch for s in r.sentences]
        self.batch_sizes.append(len(sentences))
        try:
            out = await self._workers.run(self._run_batch, pair, sentences)
        except InterpretationError as exc:
            log.warning("translation %s -> %s failed: %s", *pair, exc)
            _fail(batch, exc)
            return
        except Exception as exc:
            log.warning("translation %s -> %s failed: %r", *pair, exc)
            error = TranslationFailed(
                f"translation {pair[0]} -> {pair[1]} failed ({exc}); reinstall that "
                "package with 'seoulbridge models install FILE.argosmodel'"
            )
            error.__cause__ = exc
            _fail(batch, error)
            return
        pos = 0
        for r in batch:
            n = len(r.sentences)
            if not r.future.done():
                r.future.set_result(out[pos : pos + n])
            pos += n

    async def aclose(self) -> None:
        """Stop every pair's task (bounded), fail what is queued, close owned threads."""
        self._closed = True
        await self._tasks.aclose()
        closed = ShuttingDown("the translator is closed: captions are shutting down")
        for pq in self._queues.values():
            pq.fail_queued(closed)
        self._queues.clear()
        if self._own_workers:
            await self._workers.aclose()


def _fail(batch: list[_Request], error: InterpretationError) -> None:
    for r in batch:
        if not r.future.done():
            r.future.set_exception(error)
