"""Argos Translate packages on disk: install from a ``.argosmodel`` file, list, open.

``argostranslate.settings`` reads ``XDG_*`` and ``ARGOS_PACKAGES_DIR`` when it is
first imported and creates directories there, so :func:`configure_argos_environment`
points them into our data directory before anything imports ``argostranslate``.
We only use ``argostranslate.package.Package`` (metadata and tokenizer); the
network-touching parts (package index, MiniSBD sentence splitter) are never called.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from interpretation.errors import PackageError

log = logging.getLogger(__name__)

PACKAGE_SUFFIX = ".argosmodel"


def configure_argos_environment(argos_root: Path) -> None:
    """Import Argos Translate with its data, config and cache directories under ``argos_root``.

    ``argostranslate.settings`` reads ``XDG_*`` and ``ARGOS_PACKAGES_DIR`` once, at
    import, and creates directories there; so the variables are pointed into
    ``argos_root`` for that import and restored afterwards (nothing else in the
    process, nor its children, sees them). Later calls change nothing, which is
    harmless: we always pass package directories explicitly and never use its index.
    """
    if "argostranslate.settings" in sys.modules:
        return
    root = argos_root.resolve()
    wanted = {
        "XDG_DATA_HOME": str(root / "data"),
        "XDG_CONFIG_HOME": str(root / "config"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "ARGOS_PACKAGES_DIR": str(root / "packages"),
    }
    saved = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        importlib.import_module("argostranslate.settings")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class PackageInfo(BaseModel):
    """One installed translation package."""

    model_config = ConfigDict(frozen=True)

    from_code: str
    to_code: str
    from_name: str
    to_name: str
    version: str
    path: Path

    @property
    def pair(self) -> tuple[str, str]:
        return self.from_code, self.to_code


def _read_metadata(raw: bytes, where: str) -> dict[str, Any]:
    try:
        metadata = json.loads(raw)
    except ValueError as exc:
        raise PackageError(f"{where}: metadata.json is not valid JSON ({exc})") from exc
    if not isinstance(metadata, dict):
        raise PackageError(f"{where}: metadata.json must hold an object")
    if metadata.get("type", "translate") != "translate":
        raise PackageError(
            f"{where}: package type {metadata.get('type')!r} is not a translation package"
        )
    for key in ("from_code", "to_code"):
        if not isinstance(metadata.get(key), str) or not metadata[key]:
            raise PackageError(f"{where}: metadata.json lacks {key!r}")
    return metadata


def _info(path: Path, metadata: dict[str, Any]) -> PackageInfo:
    return PackageInfo(
        from_code=metadata["from_code"],
        to_code=metadata["to_code"],
        from_name=str(metadata.get("from_name") or metadata["from_code"]),
        to_name=str(metadata.get("to_name") or metadata["to_code"]),
        version=str(metadata.get("package_version", "")),
        path=path,
    )


class PackageStore:
    """The directory of installed packages. Methods block (file I/O): call them off the loop."""

    def __init__(self, packages_dir: Path) -> None:
        self.packages_dir = packages_dir
        self._lock = threading.Lock()

    def install(self, archive: Path) -> PackageInfo:
        """Install (or replace) the package in ``archive``; returns what was installed."""
        where = str(archive)
        if not archive.is_file():
            raise PackageError(f"{where}: no such file")
        if not zipfile.is_zipfile(archive):
            raise PackageError(f"{where}: not an Argos package (expected a zip archive)")
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if n and not n.startswith("__MACOSX")]
            tops = {n.split("/", 1)[0] for n in names}
            if len(tops) != 1:
                raise PackageError(f"{where}: expected one top-level folder, found {sorted(tops)}")
            top = tops.pop()
            for name in names:
                if name.startswith("/") or ".." in Path(name).parts:
                    raise PackageError(f"{where}: unsafe path {name!r} in archive")
            required = [f"{top}/metadata.json", f"{top}/model/model.bin"]
            for name in required:
                if name not in names:
                    raise PackageError(f"{where}: missing {name.split('/', 1)[1]}")
            if f"{top}/sentencepiece.model" not in names and f"{top}/bpe.model" not in names:
                raise PackageError(f"{where}: missing sentencepiece.model (or bpe.model)")
            metadata = _read_metadata(zf.read(f"{top}/metadata.json"), where)
            dirname = f"translate-{metadata['from_code']}_{metadata['to_code']}"
            with self._lock:
                self.packages_dir.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=self.packages_dir))
                try:
                    zf.extractall(staging)
                    target = self.packages_dir / dirname
                    old = None
                    if target.exists():
                        old = self.packages_dir / f".old-{dirname}-{os.getpid()}"
                        target.rename(old)
                    (staging / top).rename(target)
                    if old is not None:
                        shutil.rmtree(old, ignore_errors=True)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        info = _info(target, metadata)
        log.info("installed translation package %s -> %s at %s", *info.pair, target)
        return info

    def list(self) -> list[PackageInfo]:
        """Every installed translation package, sorted by pair."""
        found: list[PackageInfo] = []
        if not self.packages_dir.is_dir():
            return found
        for path in sorted(self.packages_dir.iterdir()):
            meta = path / "metadata.json"
            if path.name.startswith(".") or not meta.is_file():
                continue
            try:
                found.append(_info(path, _read_metadata(meta.read_bytes(), str(path))))
            except PackageError as exc:
                log.warning("skipping package directory %s: %s", path, exc)
        return sorted(found, key=lambda p: p.pair)

    def find(self, from_code: str, to_code: str) -> PackageInfo | None:
        for info in self.list():
            if info.pair == (from_code, to_code):
                return info
        return None
