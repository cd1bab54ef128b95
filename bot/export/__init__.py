"""Post-mortem export: the document reviewers read the morning after.

Rendered from the incident's timeline and stored rows (alerts, runs, steps,
approvals, action items) as Markdown, JSON (schema ``schema/postmortem-v2.json``; v1 still read)
or one self-contained HTML file with an SVG chart of the 1-5-10 stages.
The export is deterministic (same incident, same bytes) and redacted (no
secret from evidence or notes survives into any format).

Domain layer: imports bot.incidents, bot.slo and bot.store, never chat or Slack.
"""

from bot.export.api import (FORMATS, SCHEMA_PATH, Export, check_format, export_incident, redactor_for,
                            summary_lines)

__all__ = ["FORMATS", "SCHEMA_PATH", "Export", "check_format", "export_incident", "redactor_for", "summary_lines"]
