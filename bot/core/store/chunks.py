"""Long lists cut into statement-sized pieces: ``IN (...)`` lists and multi-row inserts stay bounded.

A storm or a mass deadline asks about thousands of ids at once; one statement with all of them
would hit the drivers' parameter limits (SQLite's 32,766) and plan badly, one per id would be
thousands of round trips. Every bulk read and insert of the store cuts its list here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

CHUNK = 500


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive pieces of at most ``size`` (none for an empty list)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
