"""Neutral chat messages: what to say, not how a given chat system draws it.

Handlers return a ``Reply`` made of a few block types; the console renders
them as text, the Slack adapter as Block Kit.  Keeping this vocabulary small
is what lets one handler serve every adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Fields:
    """Label/value pairs shown side by side."""

    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class ClockLine:
    """One of the three 1-5-10 clocks: verdict is met|breached|running|warning|stopped."""

    stage: str
    verdict: str
    text: str


@dataclass(frozen=True)
class Clocks:
    lines: tuple[ClockLine, ...]


@dataclass(frozen=True)
class Button:
    label: str
    action_id: str
    value: str
    style: str | None = None  # primary | danger


@dataclass(frozen=True)
class Buttons:
    buttons: tuple[Button, ...]
    block_id: str | None = None


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Divider:
    pass


Block = Heading | Paragraph | Fields | Bullets | Clocks | Buttons | Code | Divider


@dataclass
class Reply:
    """What a handler answers; ``text`` is the one-line fallback (and notification text)."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    ephemeral: bool = False
    incident_id: int | None = None
    error: bool = False

    @classmethod
    def line(cls, text: str, *, ephemeral: bool = False, incident_id: int | None = None) -> "Reply":
        return cls(text=text, ephemeral=ephemeral, incident_id=incident_id)

    @classmethod
    def failure(cls, text: str) -> "Reply":
        return cls(text=text, ephemeral=True, error=True)
