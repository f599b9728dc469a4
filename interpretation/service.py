"""The process-wide captioning service: models, pools, translator, glossary, transcripts.

``web`` builds one :class:`CaptionService` at start-up (see
``web.api_transcripts.interpretation_ctx``) and asks it for a
:class:`CaptionPipeline` per room.

Ownership: the service owns the pipelines (by room), the translator (its
per-pair tasks) and the recognition threads. ``aclose()`` closes the pipelines
concurrently in its ``TaskSet`` (each bounded), then the translator, then the
threads (bounded: a stuck decoder is reported, not waited for).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path

from interpretation.coverage import Coverage
from interpretation.errors import PipelineExists, ShuttingDown
from interpretation.events import CaptionSink
from interpretation.glossary import GlossaryStore
from interpretation.packages import PackageStore, configure_argos_environment
from interpretation.pipeline import CaptionPipeline, SpeakerFailedListener
from interpretation.recognizer import RecognitionPool, SpeechModels
from interpretation.speaker import CaptionLimits
from interpretation.transcript import TranscriptStore, load_or_create_key
from interpretation.translator import Translator
from kernel.taskset import TaskSet

log = logging.getLogger(__name__)


#: The key that encrypts transcripts at rest, in the data directory.
TRANSCRIPT_KEY_FILE = "transcript.key"


def default_packages_dir(data_dir: Path) -> Path:
    return data_dir / "argos" / "packages"


#: How long closing waits for the recognition threads once every speaker stopped.
POOL_CLOSE_S = 1.0


class CaptionService:
    def __init__(
        self,
        data_dir: Path,
        *,
        vosk_models: Mapping[str, Path] | None = None,
        packages_dir: Path | None = None,
        workers: int | None = None,
        limits: CaptionLimits | None = None,
    ) -> None:
        packages_dir = packages_dir or default_packages_dir(data_dir)
        configure_argos_environment(packages_dir.parent)
        self.models = SpeechModels(vosk_models)
        self.pool = RecognitionPool(workers)
        self.packages = PackageStore(packages_dir)
        self.glossary = GlossaryStore(data_dir / "glossary.json")
        self.transcripts = TranscriptStore(
            data_dir / "transcripts", load_or_create_key(data_dir / TRANSCRIPT_KEY_FILE)
        )
        self.translator = Translator(self.packages, self.glossary)
        self.limits = limits or CaptionLimits()
        self._pipelines: dict[str, CaptionPipeline] = {}
        self._closed = False
        self._tasks = TaskSet("captions service")
        log.info(
            "captions: speech models for %s, %d recognition threads, packages in %s",
            ", ".join(self.models.languages()) or "no language",
            self.pool.workers,
            packages_dir,
        )

    async def coverage(self) -> Coverage:
        """What this server can caption and translate now (packages re-read every 30 s)."""
        pairs = await self.translator.installed_pairs()
        return Coverage(speech=frozenset(self.models.languages()), pairs=pairs)

    def pipeline(
        self,
        room_id: str,
        sink: CaptionSink,
        *,
        on_speaker_failed: SpeakerFailedListener | None = None,
    ) -> CaptionPipeline:
        """A new caption pipeline for ``room_id``; the caller closes it (or this service does)."""
        if self._closed:
            raise ShuttingDown(f"captions are shutting down; room {room_id} gets none")
        if room_id in self._pipelines:
            raise PipelineExists(
                f"room {room_id} already has a caption pipeline on this node; "
                "close it (close_pipeline) before opening another"
            )
        p = CaptionPipeline(
            room_id,
            sink,
            models=self.models,
            pool=self.pool,
            translator=self.translator,
            transcripts=self.transcripts,
            limits=self.limits,
            on_speaker_failed=on_speaker_failed,
        )
        self._pipelines[room_id] = p
        return p

    async def close_pipeline(self, room_id: str, *, flush_s: float | None = None) -> None:
        """Close a room's captions; ``flush_s`` bounds the wait for the last finals."""
        p = self._pipelines.pop(room_id, None)
        if p is not None:
            await p.aclose(flush_s=flush_s)

    async def aclose(self) -> None:
        """Close every pipeline (concurrently), the translator, then the recognition threads."""
        self._closed = True
        try:
            closes = [
                self._tasks.spawn(self.close_pipeline(room_id), name=f"close room {room_id}")
                for room_id in list(self._pipelines)
            ]
            if closes:
                await asyncio.wait(closes)
        finally:
            await self._tasks.aclose()
        await self.translator.aclose()
        # Every speaker has stopped: what still runs on a thread is a model load or a
        # stuck call, whose result nobody wants. Wait briefly, not the full bound.
        await self.pool.aclose(bound_s=min(self.limits.close_bound_s, POOL_CLOSE_S))
