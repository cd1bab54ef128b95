"""Reading Alertmanager's webhook (version 4) into plain, validated values.

Validation happens before anything is written, so a malformed payload
changes nothing and its sender is told which field is wrong
(``alerts[3].startsAt: expected an RFC 3339 time``).  Alertmanager does not
retry a 4xx, which is right: the same bytes would fail again.

Each alert carries its own ``status``; the top-level status only says
whether *any* alert of the group still fires (a group can mix firing and
resolved alerts), so it is kept for the record and never used to decide.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from bot.core.errors import BadInput

SOURCE = "alertmanager"  # the actor and source of what its deliveries record
SUPPORTED_VERSIONS = ("4",)
STATUSES = ("firing", "resolved")
# Alertmanager's "no end time" (Go's zero time).
_ZERO_YEAR = 1


@dataclass(frozen=True)
class AlertIn:
    """One alert of a webhook, as Alertmanager reported it."""

    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str
    generator_url: str | None = None

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @cached_property
    def key(self) -> tuple[str, datetime]:
        """An alert instance: the same fingerprint that starts again is a new instance."""
        return self.fingerprint, self.starts_at

    @cached_property
    def instance(self) -> str:
        """``fingerprint@startsAt``: the instance as text (timeline dedupe keys and digests)."""
        return f"{self.fingerprint}@{self.starts_at.isoformat()}"

    def summary(self) -> str:
        return (self.annotations.get("summary") or self.annotations.get("description")
                or self.annotations.get("message") or self.alertname)


@dataclass(frozen=True)
class Notification:
    """One webhook delivery: a group of alerts and the group's identity."""

    receiver: str
    status: str
    group_key: str
    alerts: tuple[AlertIn, ...]
    group_labels: dict[str, str] = field(default_factory=dict)
    external_url: str | None = None
    truncated_alerts: int = 0
    # when the delivery reached the bot (its HTTP handler), before any queueing for the writer: the
    # alerts' ``received_at``, so the bot's own ingest time is booked to the bot, not to Alertmanager
    arrived_at: datetime | None = None


def _fail(path: str, expected: str, got: Any = None) -> BadInput:
    shown = "" if got is None else f", got {json.dumps(got)[:80] if not isinstance(got, str) else repr(got[:80])}"
    return BadInput(f"malformed Alertmanager webhook: {path}: expected {expected}{shown}.", field=path)


def parse_time(value: Any, path: str, *, optional: bool = False) -> datetime | None:
    """An RFC 3339 time from Alertmanager (``Z`` suffix, up to nanoseconds) as aware UTC."""
    if value in (None, "") and optional:
        return None
    if not isinstance(value, str):
        raise _fail(path, "an RFC 3339 time such as 2026-11-25T20:05:19.855Z", value)
    text = value.strip()
    # Python keeps microseconds: cut a nanosecond fraction down to six digits.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + "." + rest[:min(digits, 6)] + rest[digits:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(path, "an RFC 3339 time such as 2026-11-25T20:05:19.855Z", value) from None
    if parsed.tzinfo is None:
        raise _fail(path, "a time with a zone (Z or +hh:mm)", value)
    if parsed.year == _ZERO_YEAR:
        if optional:
            return None
        raise _fail(path, "a real time, not Go's zero time", value)
    return parsed.astimezone(timezone.utc)


def _str_map(value: Any, path: str, *, required: bool) -> dict[str, str]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, "an object of string values", value)
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(v, str):
            raise _fail(f"{path}.{k}", "a string", v)
        out[str(k)] = v
    return out


def label_fingerprint(labels: dict[str, str]) -> str:
    """A stable stand-in when a sender omits ``fingerprint`` (Alertmanager always sends one)."""
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def parse_alert(raw: Any, path: str) -> AlertIn:
    if not isinstance(raw, dict):
        raise _fail(path, "an alert object", raw)
    status = raw.get("status")
    if status not in STATUSES:
        raise _fail(f"{path}.status", "firing or resolved", status)
    labels = _str_map(raw.get("labels"), f"{path}.labels", required=True)
    if not labels.get("alertname"):
        raise _fail(f"{path}.labels.alertname", "the alert's name")
    annotations = _str_map(raw.get("annotations"), f"{path}.annotations", required=False)
    starts_at = parse_time(raw.get("startsAt"), f"{path}.startsAt")
    ends_at = parse_time(raw.get("endsAt"), f"{path}.endsAt", optional=True)
    fingerprint = raw.get("fingerprint")
    if fingerprint is None:
        fingerprint = label_fingerprint(labels)
    elif not isinstance(fingerprint, str) or not fingerprint.strip() or len(fingerprint) > 128:
        raise _fail(f"{path}.fingerprint", "a non-empty string of at most 128 characters", fingerprint)
    generator = raw.get("generatorURL")
    if generator is not None and not isinstance(generator, str):
        raise _fail(f"{path}.generatorURL", "a URL string", generator)
    assert starts_at is not None
    return AlertIn(status=status, labels=labels, annotations=annotations, starts_at=starts_at, ends_at=ends_at,
                   fingerprint=fingerprint.strip(), generator_url=generator or None)


def parse_notification(body: Any) -> Notification:
    """Validate a decoded webhook body; raises ``BadInput`` naming the first bad field."""
    if not isinstance(body, dict):
        raise _fail("(body)", "a JSON object (Alertmanager webhook version 4)", body)
    version = body.get("version")
    if str(version) not in SUPPORTED_VERSIONS:
        raise _fail("version", "\"4\" (Alertmanager webhook version 4)", version)
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise _fail("alerts", "a list of alerts", alerts)
    status = body.get("status", "firing")
    if status not in STATUSES:
        raise _fail("status", "firing or resolved", status)
    group_key = body.get("groupKey", "")
    if not isinstance(group_key, str):
        raise _fail("groupKey", "a string", group_key)
    receiver = body.get("receiver", "")
    if not isinstance(receiver, str):
        raise _fail("receiver", "a string", receiver)
    truncated = body.get("truncatedAlerts", 0)
    if not isinstance(truncated, int):
        raise _fail("truncatedAlerts", "a number", truncated)
    parsed = tuple(parse_alert(a, f"alerts[{i}]") for i, a in enumerate(alerts))
    external = body.get("externalURL")
    return Notification(
        receiver=receiver, status=status, group_key=group_key, alerts=parsed,
        group_labels=_str_map(body.get("groupLabels"), "groupLabels", required=False),
        external_url=external if isinstance(external, str) else None,
        truncated_alerts=truncated,
    )
