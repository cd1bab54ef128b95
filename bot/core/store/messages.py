"""What the outbox carries: one typed declaration per message kind.

Every side effect towards people is written as one of these (never as a kind
string with a dict made up on the spot) and delivered as one: the writers build
a declaration and hand it to ``outbox.enqueue``; the senders read the stored row
back with ``decode`` and give each surface (Slack, the console, the pager
webhook, PagerDuty, Opsgenie) the typed message.  The stored format is the one
the bot has always written — the same ``kind`` strings and payload keys — so rows
queued before this module existed still deliver.

A stored payload that does not fit its declaration (a wrong type, a missing
field, an unknown kind) raises ``MalformedMessage`` naming the field; the sender
marks that row failed with the sentence, so it is neither lost nor retried
forever.  Keys a declaration does not know are ignored, not refused: during a
rolling upgrade a newer replica may add an optional field, and an older one
must still deliver the message.

The declarations live in the store layer because both sides import them: the
domain writers (incidents, slo, diagnosis, playbooks) and the deliverers (chat,
Slack, paging) sit above it.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

from bot.core.errors import BadInput


class MalformedMessage(BadInput):
    """A message (stored or being written) that does not fit its kind's declaration."""


@dataclass(frozen=True, kw_only=True)
class Message:
    """The base of every outbox message; a subclass declares ``kind`` and its payload fields."""

    kind: ClassVar[str]

    def __post_init__(self) -> None:  # a writer's mistake fails in its own transaction, which then changes nothing
        for f in _fields(type(self)):
            value = getattr(self, f.name)
            if not f.accepts(value):
                raise MalformedMessage(f"outbox message {self.kind}: field {f.name!r} must be {_describe(f.hint)}, "
                                       f"not {type(value).__name__} ({value!r:.60}).", field=f.name)

    @property
    def stamps_notified(self) -> bool:
        """Whether delivering it is the moment people know of the incident (it stamps ``notified_at``)."""
        return False

    def coalesce_key(self) -> str | None:
        """The key under which a still-pending message of this kind is updated instead of queued again."""
        return None

    def to_payload(self) -> dict[str, Any]:
        """The stored payload: every field, except those left unset (None, or False where False is the default).

        Leaving unset flags out keeps coalescing right: a pending card that announces
        stays an announcement when a plain update is merged into it.
        """
        out: dict[str, Any] = {}
        for f in _fields(type(self)):
            value = getattr(self, f.name)
            if value is None or (value is False and f.default is False):
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_payload(cls, payload: Any) -> "Message":
        """The message a stored payload holds; ``MalformedMessage`` names the field that does not fit."""
        if not isinstance(payload, dict):
            raise MalformedMessage(f"outbox message {cls.kind}: the payload is {type(payload).__name__}, "
                                   "not an object.", field="(payload)")
        values: dict[str, Any] = {}
        for f in _fields(cls):
            if f.name in payload:
                values[f.name] = payload[f.name]
            elif f.required:
                raise MalformedMessage(f"outbox message {cls.kind}: field {f.name!r} is missing.", field=f.name)
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class IncidentCard(Message):
    """Post the incident's card (the first one gives the incident its home) or update it in place.

    Written by every change the card shows: lifecycle moves and declarations
    (incidents/service.py), an acknowledgement (incidents/acks.py), the watcher's
    warnings and breaches (slo/watcher.py, slo/mass.py), re-pages (slo/repage.py),
    playbook runs (playbooks/engine/records.py).  Coalesced per incident, so a
    storm of changes is one update.  Delivered by Slack (post, then chat.update)
    and the console (printed when it announces); not for pagers.
    """

    kind: ClassVar[str] = "incident.card"
    incident_id: int
    announce: bool = False  # the first card of a new incident: printed by the console
    notifies: bool = False  # its delivery is the announcement: it stamps notified_at

    @property
    def stamps_notified(self) -> bool:
        return self.notifies

    def coalesce_key(self) -> str | None:
        return f"card:{self.incident_id}"


@dataclass(frozen=True, kw_only=True)
class TimelinePost(Message):
    """One timeline event as a line in the incident's thread.

    Written by ``timeline.record`` (bot/domain/incidents/timeline.py) and the watcher's
    bulk records (slo/mass.py), in the event's transaction.  Delivered by Slack
    (a thread reply) and the console (printed when the bot itself acted).
    """

    kind: ClassVar[str] = "timeline.post"
    event_id: int


@dataclass(frozen=True, kw_only=True)
class Page(Message):
    """Page a person about an incident.

    Written by ``slo/paging.page`` on every configured channel (the on-call
    commander of a new incident, an escalation, a re-page) and by the diagnosis
    when it needs a person (bot/domain/diagnosis/service.py, chat only).  Delivered by
    Slack (a DM and a mention in the home), the console (printed), the pager
    webhook (bot/compose/app/pager.py), PagerDuty and Opsgenie (bot/compose/app/paging.py).
    """

    kind: ClassVar[str] = "page"
    user: str
    reason: str
    level: int = 0  # 0 the first person paged; 1, 2, … the escalation steps of the rota
    notifies: bool = False  # the page of a new incident: its delivery stamps notified_at

    @property
    def stamps_notified(self) -> bool:
        return self.notifies


@dataclass(frozen=True, kw_only=True)
class PageClose(Message):
    """The incident is over: resolve its PagerDuty incident, close its Opsgenie alert.

    Written by ``slo/paging.close`` on the paging services' channels only.
    Delivered by PagerDuty and Opsgenie; not for chat, nor the pager webhook
    (it has no way to close a page).
    """

    kind: ClassVar[str] = "page.close"
    reason: str


@dataclass(frozen=True, kw_only=True)
class Notice(Message):
    """A line for people: in the incident's home, or the incidents channel when it has none.

    Written by alert ingestion (the alert tally, the offer to resolve;
    incidents/alerts.py), overdue action items (incidents/action_items.py), the
    post-mortem prompt (chat/handlers_review.py), a playbook run's word to the
    commander (playbooks/engine/records.py) and scheduled drills
    (sandbox/scheduled.py).  Delivered by Slack and the console.
    """

    kind: ClassVar[str] = "notice"
    text: str
    user: str | None = None  # whom it is addressed to (the commander, an item's owner)
    incident_id: int | None = None
    offer: str | None = None  # a verb the notice offers, e.g. "resolve" once every alert resolved
    run_id: int | None = None  # the playbook run it is about


@dataclass(frozen=True, kw_only=True)
class SlackReply(Message):
    """The answer to a Slack slash command or button press (outbox channel ``slack``).

    Written by integrations/adapters/slack/app.py; delivered only by Slack (through the
    ``response_url``, else the Web API, else a DM).  ``message`` is the Block Kit
    message already rendered.
    """

    kind: ClassVar[str] = "slack.reply"
    message: dict[str, Any]
    ephemeral: bool = False
    user: str | None = None  # the Slack user id of the person who asked
    channel: str | None = None
    response_url: str | None = None
    thread_ts: str | None = None


KINDS: dict[str, type[Message]] = {cls.kind: cls for cls in (IncidentCard, TimelinePost, Page, PageClose, Notice,
                                                               SlackReply)}


def decode(kind: str, payload: Any) -> Message:
    """The typed message of a stored row's ``kind`` and ``payload``."""
    cls = KINDS.get(kind)
    if cls is None:
        raise MalformedMessage(f"outbox message kind {kind!r} is not declared (known: {', '.join(sorted(KINDS))}).",
                               field="kind")
    return cls.from_payload(payload)


@dataclass(frozen=True)
class _Field:
    """One payload field of a declaration, with the Python types its JSON value may have."""

    name: str
    hint: Any
    types: tuple[type, ...]
    default: Any
    required: bool

    def accepts(self, value: Any) -> bool:
        kind = type(value)
        if kind in self.types:
            return True
        return kind is not bool and isinstance(value, self.types)  # True is an int to Python, not to a payload


_FIELDS: dict[str, tuple[_Field, ...]] = {}


def _fields(cls: type[Message]) -> tuple[_Field, ...]:
    """A declaration's fields, worked out once per kind: the watcher may queue thousands of messages at once."""
    found = _FIELDS.get(cls.kind)
    if found is None:
        hints = get_type_hints(cls)
        found = _FIELDS[cls.kind] = tuple(
            _Field(f.name, hints[f.name], _types(hints[f.name]), f.default, f.default is dataclasses.MISSING)
            for f in dataclasses.fields(cls))
    return found


def _types(hint: Any) -> tuple[type, ...]:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return tuple(t for arg in get_args(hint) for t in _types(arg))
    if hint is Any:
        return (object,)
    return (origin,) if origin is not None else (hint,)  # dict[str, Any]: a JSON object


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in get_args(hint))
    if hint is type(None):
        return "null"
    if origin is dict:
        return "an object"
    return {int: "an integer", str: "a string", bool: "true or false"}.get(hint, getattr(hint, "__name__", str(hint)))
