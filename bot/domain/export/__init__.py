"""Post-mortem export: the document reviewers read the morning after.

Rendered from the incident's timeline and stored rows (alerts, runs, steps,
approvals, action items) as Markdown, JSON (schema ``schema/postmortem-v2.json``; v1 still read)
or one self-contained HTML file with an SVG chart of the 1-5-10 stages.
The export is deterministic (same incident, same bytes) and redacted (no
secret from evidence or notes survives into any format).

Domain layer, the top of it: imports bot.domain.diagnosis, bot.domain.incidents, bot.domain.slo and bot.core.store, never chat or
Slack.  Public: the names re-exported here and the modules listed in ``__all__``.
"""

from bot.domain.export.api import (FORMATS, SCHEMA_PATH, Export, check_format, export_incident, redactor_for,
                            summary_lines)

__all__ = ["FORMATS", "SCHEMA_PATH", "Export", "check_format", "export_incident", "redactor_for", "summary_lines",
           # modules the report, the web board and the chat render with
           "document", "redact", "render", "report_render", "timefmt"]
