"""Run the same call in several threads released together: nodes that start at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def at_once(make: Callable[[], T], nodes: int = 4) -> list[T]:
    """``make()`` in ``nodes`` threads released together by one barrier; their results,
    in the order they finished (raises the first error any of them met)."""
    start = threading.Barrier(nodes)
    results: list[T] = []
    errors: list[BaseException] = []

    def node() -> None:
        start.wait()
        try:
            results.append(make())
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=node) for _ in range(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
