"""Export one incident as a post-mortem: the entry point every adapter calls.

Chat, CLI and HTTP all call ``export_incident``; it validates the format and
zone first (bad input changes nothing and names the field), reads the
incident in one transaction, redacts, then renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from sqlalchemy import select
from sqlmodel import col

from bot.core.config import Settings
from bot.core.errors import BadInput, NotFound
from bot.domain.export import document, render, timefmt
from bot.domain.export.redact import Redactor
from bot.core.store.refs import parse_ref, ref_of
from bot.core.store.db import Database
from bot.core.store.models import Incident

SCHEMA_PATH = Path(__file__).parent / "schema" / "postmortem-v2.json"
SCHEMA_V1_PATH = Path(__file__).parent / "schema" / "postmortem-v1.json"
# format -> (media type, file extension)
FORMATS: dict[str, tuple[str, str]] = {
    "md": ("text/markdown; charset=utf-8", "md"),
    "json": ("application/json", "json"),
    "html": ("text/html; charset=utf-8", "html"),
}


@dataclass(frozen=True)
class Export:
    """A rendered post-mortem and what a transport needs to send it."""

    incident_ref: str
    format: str
    content: str
    media_type: str
    filename: str
    document: dict[str, Any]  # the redacted tree (what the JSON format serialises)


def check_format(fmt: str | None) -> str:
    fmt = (fmt or "md").strip().lower()
    if fmt == "markdown":
        fmt = "md"
    if fmt not in FORMATS:
        raise BadInput(f"format must be one of {', '.join(FORMATS)}, not `{fmt}`.", field="format")
    return fmt


def _configured_secrets(value: Any) -> list[str]:
    """Every SecretStr anywhere in the settings (Slack tokens, webhook token, and whatever is added later)."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [s for name in type(value).model_fields for s in _configured_secrets(getattr(value, name))]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _configured_secrets(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _configured_secrets(item)]
    return []


def redactor_for(settings: Settings) -> Redactor:
    """The redactor for this deployment: patterns plus the configured secrets themselves."""
    literals = _configured_secrets(settings)
    try:
        from sqlalchemy.engine import make_url

        password = make_url(settings.database_url).password
        if password:
            literals.append(password)
    except Exception:  # an unparseable URL has no password to hide
        pass
    return Redactor([s for s in literals if s], settings.export.redact_patterns)


def export_incident(db: Database, settings: Settings, ref: str | int, *, fmt: str | None = "md",
                    tz: str | None = None, as_of: datetime | None = None,
                    generated_at: datetime | None = None) -> Export:
    """Render incident ``ref`` as a post-mortem in ``fmt`` (md, json, html), times in zone ``tz``."""
    fmt = check_format(fmt)
    tz_name, tzinfo = timefmt.zone(tz if tz is not None else settings.export.default_timezone)
    incident_id = parse_ref(ref)
    options = document.Options(tz_name, tzinfo, as_of=as_of, generated_at=generated_at)
    with db.reading() as session:
        incident = session.execute(select(Incident).where(col(Incident.id) == incident_id)).scalars().first()
        if incident is None:
            raise NotFound(f"there is no incident {ref_of(incident_id)}.")
        tree = document.build(session, incident, settings, options, redactor_for(settings))
    media_type, ext = FORMATS[fmt]
    content = render.RENDERERS[fmt](tree)
    return Export(ref_of(incident_id), fmt, content, media_type, f"{ref_of(incident_id)}-postmortem.{ext}", tree)


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """The verdict in a few lines, for chat and the CLI's stderr."""
    inc = doc["incident"]
    lines = [f"{inc['ref']} post-mortem: {inc['title']} ({inc['severity']}, cluster {inc['cluster']}, {inc['state']})"]
    for s in doc["slo"]["stages"]:
        if s["elapsed_seconds"] is not None:
            took = f"{s['label']} after {timefmt.duration(s['elapsed_seconds'])}"
        else:
            took = f"never {s['label']}"
        over = f" by {timefmt.duration(s['breached_by_seconds'])}" if s["breached_by_seconds"] is not None else ""
        lines.append(f"{s['title']}: {took} (budget {timefmt.duration(s['budget_seconds'])}): "
                     f"{s['verdict'].replace('-', ' ')}{over}")
    if inc.get("root_cause"):
        lines.append(f"Root cause: {inc['root_cause']}")
    if inc.get("mitigation"):
        lines.append(f"Mitigation: {inc['mitigation']}")
    lines.append(f"{len(doc['timeline'])} timeline events, {len(doc['alerts'])} alerts, {len(doc['runs'])} playbook runs, "
                 f"{len(doc['action_items'])} action items")
    return lines
