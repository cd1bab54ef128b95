"""`/incident export [INC] [--format md|json|html] [--tz ZONE]` in chat.

Markdown short enough for one chat message is answered inline (a code block
people can copy into a wiki or a pull request); longer Markdown, JSON and
HTML are answered with the verdict and where to fetch the file (the HTTP
endpoint, and the CLI line that writes it), because chat is no place for a
50,000-event document.
"""

from __future__ import annotations

from urllib.parse import quote

from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.grammar import Command
from bot.chat.messages import Bullets, ClockLine, Clocks, Code, Heading, Paragraph, Reply
from bot.domain.export import export_incident, summary_lines
from bot.domain.export import Export

# Slack's section text limit is 3000 characters; stay under it with the fences.
INLINE_LIMIT = 2800
CLOCK_VERDICT = {"met": "met", "breached": "breached", "never-reached": "stopped"}


def _where(d: Dispatcher, result: Export, tz: str | None) -> list[str]:
    query = f"format={result.format}" + (f"&tz={quote(tz, safe='/')}" if tz else "")
    path = f"/api/incidents/{result.incident_ref}/export?{query}"
    base = d.services.settings.export.public_url
    cli = f"incident-bot export {result.incident_ref} --format {result.format}" + (f" --tz {tz}" if tz else "") + \
        f" -o {result.filename}"
    return [f"{base.rstrip('/')}{path}" if base else f"GET {path} on the bot's HTTP endpoint", cli]


def export(d: Dispatcher, ctx: ChatContext, cmd: Command) -> Reply:
    ref = d.incident_ref(ctx, cmd)
    tz = cmd.options.get("tz")
    result = export_incident(d.services.db, d.services.settings, ref, fmt=cmd.options.get("format", "md"), tz=tz)
    doc = result.document
    incident_id = doc["incident"]["id"]
    if result.format == "md" and len(result.content) <= INLINE_LIMIT:
        return Reply(text=f"Post-mortem of {result.incident_ref} (Markdown)",
                     blocks=[Heading(f"Post-mortem of {result.incident_ref} (Markdown)"), Code(result.content)],
                     ephemeral=True, incident_id=incident_id)
    lines = summary_lines(doc)
    clocks = tuple(ClockLine(s.split(":")[0], CLOCK_VERDICT[st["verdict"]], s)
                   for s, st in zip(lines[1:4], doc["slo"]["stages"]))
    size = f"{len(result.content.encode()):,} bytes"
    return Reply(
        text=f"Post-mortem of {result.incident_ref} ({result.format}, {size}): fetch it from "
             f"{_where(d, result, tz)[0]}",
        blocks=[Heading(lines[0]), Clocks(clocks), Paragraph("\n".join(lines[4:])),
                Paragraph(f"The {result.format.upper()} file ({size}) is ready to fetch:"),
                Bullets(tuple(_where(d, result, tz)))],
        ephemeral=True, incident_id=incident_id,
    )


def register(dispatcher: Dispatcher) -> None:
    dispatcher.register("export", export)
