"""The shapes every check kind shares: its declared fields, what it found, and the kind itself.

Apart from ``checks`` (which declares the kinds) so that a kind living in a module of its own
(``probe_kind``) can use them without importing ``checks`` back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from bot.domain.diagnosis.ports import ClusterAccess


@dataclass(frozen=True)
class Field:
    type: str  # str | int | number | bool | strings (a list of strings, or one template giving a list)
    required: bool = False
    choices: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Facts:
    facts: dict[str, Any]
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    name: str
    doc: str
    fields: Mapping[str, Field]
    run: Callable[[ClusterAccess, dict[str, Any], float], Facts]
    ops: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # op -> extra fields it needs
