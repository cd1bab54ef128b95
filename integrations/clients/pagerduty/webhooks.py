"""PagerDuty webhooks v3: the signature check and the few fields the bot reads.

Every delivery carries ``X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw
body>`` keyed with the subscription's secret; while a secret is rotated the
header holds several comma-separated signatures and any one of them may match
(https://developer.pagerduty.com/docs/webhooks/webhook-signatures/).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-PagerDuty-Signature"


def sign(body: bytes, secret: str) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: Iterable[str]) -> bool:
    """True when one ``v1=`` signature of the header is the body's HMAC under one of ``secrets``."""
    if not header:
        return False
    presented = [part.strip() for part in header.split(",") if part.strip().startswith("v1=")]
    for secret in secrets:
        expected = sign(body, secret)
        if any(hmac.compare_digest(expected, candidate) for candidate in presented):
            return True
    return False


@dataclass(frozen=True)
class IncidentEvent:
    """An ``incident.*`` event: which incident (by our ``dedup_key``), what happened, by whom."""

    event_id: str
    event_type: str
    incident_key: str | None
    agent: str | None
    occurred_at: str | None


def parse(payload: Any) -> IncidentEvent:
    """Read a v3 payload; raises ValueError naming the field that is missing or wrong."""
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), dict):
        raise ValueError("event: expected an object (a PagerDuty webhook v3 payload)")
    event = payload["event"]
    for name in ("id", "event_type"):
        if not isinstance(event.get(name), str) or not event[name]:
            raise ValueError(f"event.{name}: expected a string")
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    agent = event.get("agent") if isinstance(event.get("agent"), dict) else {}
    key = data.get("incident_key")
    return IncidentEvent(event_id=event["id"], event_type=event["event_type"],
                         incident_key=key if isinstance(key, str) and key else None,
                         agent=agent.get("summary") if isinstance(agent.get("summary"), str) else None,
                         occurred_at=event.get("occurred_at") if isinstance(event.get("occurred_at"), str) else None)
