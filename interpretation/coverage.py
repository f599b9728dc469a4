"""What this server can caption and translate: speech models and translation routes.

A :class:`Coverage` is a snapshot (a frozen value, no I/O): the spoken languages
that have a Vosk model, and the installed translation packages. From it follow the
route for every caption-language pair (direct, by pivot through English, or none)
and the honest states the pages show: "no live captions for Japanese speech on this
server", "translation into English is not installed". ``CaptionService.coverage()``
makes one; the start-up log, ``/healthz``, ``/api/captions/coverage`` (the admin
page) and ``seoulbridge models list`` all print the same one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from kernel.languages import LANGUAGES, Language

PIVOT: Language = "en"


class Route(enum.StrEnum):
    """How captions in one language reach another."""

    SAME = "same"  # the same language: nothing to translate
    DIRECT = "direct"  # one installed package
    PIVOT = "pivot"  # two packages, through English
    NONE = "none"  # no translation installed


def route_between(
    pairs: frozenset[tuple[str, str]], source: str, target: str
) -> list[tuple[str, str]] | None:
    """The package pairs to chain for ``source -> target`` ([] for the same language)."""
    if source == target:
        return []
    if (source, target) in pairs:
        return [(source, target)]
    if (source, PIVOT) in pairs and (PIVOT, target) in pairs:
        return [(source, PIVOT), (PIVOT, target)]
    return None


@dataclass(frozen=True)
class Coverage:
    """Speech models and translation packages of this server, at one moment."""

    #: spoken languages with a speech model (live captions)
    speech: frozenset[str]
    #: installed translation packages as (from, to)
    pairs: frozenset[tuple[str, str]]

    def has_speech(self, language: str) -> bool:
        return language in self.speech

    def route(self, source: str, target: str) -> Route:
        chain = route_between(self.pairs, source, target)
        if chain is None:
            return Route.NONE
        return {0: Route.SAME, 1: Route.DIRECT}.get(len(chain), Route.PIVOT)

    def routes(
        self, sources: Iterable[str], targets: Iterable[str]
    ) -> list[tuple[str, str, Route]]:
        """Every (source, target, route) for distinct languages, sorted."""
        return [
            (s, t, self.route(s, t))
            for s in sorted(set(sources))
            for t in sorted(set(targets))
            if s != t
        ]

    def matrix(self) -> dict[Language, dict[str, str]]:
        """For each service language: ``speech`` ("yes"/"no") and the route to each other one."""
        out: dict[Language, dict[str, str]] = {}
        for lang in LANGUAGES:
            row = {"speech": "yes" if lang in self.speech else "no"}
            for other in LANGUAGES:
                if other != lang:
                    row[other] = self.route(lang, other).value
            out[lang] = row
        return out

    def summary(self) -> str:
        """One line for the start-up log."""
        speech = ", ".join(sorted(self.speech)) or "none"
        routes = [
            f"{s}->{t}{'' if r is Route.DIRECT else ' (via en)'}"
            for s, t, r in self.routes(LANGUAGES, LANGUAGES)
            if r in (Route.DIRECT, Route.PIVOT)
        ]
        return (
            f"live captions for speech in: {speech}; "
            f"translation: {', '.join(routes) if routes else 'none installed'}"
        )
