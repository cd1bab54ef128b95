"""Neutral replies (bot/chat/messages.py) drawn as Slack Block Kit, within Slack's limits.

Slack refuses a whole message when one block breaks a limit (``invalid_blocks``,
``msg_blocks_too_long``), and slack_sdk does not check plain dicts, so the
limits are enforced here: 50 blocks per message, 3000 characters per section
text, 150 per header, 10 fields per section, 25 buttons per actions block, and
a total text budget.  Long content is cut with a visible "… N more" note
rather than lost silently: the full record is always ``/incident timeline``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.chat.messages import Block, Bullets, Buttons, Clocks, Code, Divider, Fields, Heading, Paragraph, Reply

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_BLOCK_ID = 255
MAX_FALLBACK_TEXT = 3000
# Slack answers msg_blocks_too_long somewhere above ~12k characters of block text in total
MAX_TOTAL_TEXT = 11000
CLOCK_MARK = {"met": "✅", "breached": "❌", "running": "⏳", "warning": "⚠️", "stopped": "⏹"}

Mention = Callable[[str], str | None]  # a user name -> Slack user id, if known
MENTION_RE = re.compile(r"(?<![\w<])@([A-Za-z0-9][\w.\-]*)")
SLACK_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")


def cut(text: str, limit: int) -> str:
    """Shorten to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str, mention: Mention | None = None) -> str:
    """Escape user text, then turn ``@name`` into a real mention when the person is known."""
    out = escape(text)

    def repl(match: re.Match[str]) -> str:
        name = match.group(1).rstrip(".")
        user_id = mention(name) if mention else None
        if user_id is None and SLACK_ID_RE.match(name):
            user_id = name
        return f"<@{user_id}>" + match.group(1)[len(name):] if user_id else match.group(0)

    return MENTION_RE.sub(repl, out)


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": cut(text or " ", limit), "emoji": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text or " ", MAX_SECTION_TEXT)}}


def _chunks(lines: list[str], limit: int = MAX_SECTION_TEXT) -> list[str]:
    """Join lines into texts of at most ``limit`` characters (a line too long is cut)."""
    out: list[str] = []
    current = ""
    for line in lines:
        line = cut(line, limit)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            out.append(current)
            current = line
        else:
            current = candidate
    if current:
        out.append(current)
    return out


def _convert(block: Block, mention: Mention | None) -> list[dict[str, Any]]:
    if isinstance(block, Heading):
        return [{"type": "header", "text": _plain(block.text, MAX_HEADER_TEXT)}]
    if isinstance(block, Paragraph):
        return [_section(text) for text in _chunks([mrkdwn(block.text, mention)])]
    if isinstance(block, Fields):
        sections = []
        pairs = list(block.pairs)
        for start in range(0, len(pairs), MAX_FIELDS):
            fields = [{"type": "mrkdwn", "text": cut(f"*{escape(k)}*\n{mrkdwn(v, mention)}", MAX_FIELD_TEXT)}
                      for k, v in pairs[start:start + MAX_FIELDS]]
            sections.append({"type": "section", "fields": fields})
        return sections
    if isinstance(block, Bullets):
        return [_section(text) for text in _chunks([f"• {mrkdwn(i, mention)}" for i in block.items])]
    if isinstance(block, Clocks):
        lines = [f"{CLOCK_MARK.get(c.verdict, '•')} {escape(c.text)}" for c in block.lines]
        return [_section(text) for text in _chunks(["*1-5-10 clocks*", *lines])]
    if isinstance(block, Buttons):
        out = []
        buttons = list(block.buttons)
        for start in range(0, len(buttons), MAX_ACTIONS):
            elements = []
            for b in buttons[start:start + MAX_ACTIONS]:
                element: dict[str, Any] = {"type": "button", "text": _plain(b.label, MAX_BUTTON_TEXT),
                                           "action_id": cut(b.action_id, MAX_BLOCK_ID),
                                           "value": b.value[:MAX_BUTTON_VALUE]}
                if b.style in ("primary", "danger"):
                    element["style"] = b.style
                elements.append(element)
            actions: dict[str, Any] = {"type": "actions", "elements": elements}
            if block.block_id:
                suffix = f"-{start // MAX_ACTIONS}" if start else ""
                actions["block_id"] = cut(block.block_id, MAX_BLOCK_ID - len(suffix)) + suffix
            out.append(actions)
        return out
    if isinstance(block, Code):
        fence = 8  # the two ``` fences and newlines
        return [_section(f"```\n{escape(text)}\n```") for text in _chunks(block.text.splitlines() or [" "],
                                                                          MAX_SECTION_TEXT - fence)]
    if isinstance(block, Divider):
        return [{"type": "divider"}]
    return [_section(escape(str(block)))]


def _text_size(block: dict[str, Any]) -> int:
    size = len(block.get("text", {}).get("text", "")) if isinstance(block.get("text"), dict) else 0
    size += sum(len(f.get("text", "")) for f in block.get("fields", []))
    size += sum(len(e.get("text", {}).get("text", "")) for e in block.get("elements", []) if isinstance(e, dict))
    return size


def blocks_of(reply: Reply, mention: Mention | None = None) -> list[dict[str, Any]]:
    """Block Kit blocks for a reply; never more than Slack accepts in one message."""
    converted: list[dict[str, Any]] = []
    for block in reply.blocks:
        converted.extend(_convert(block, mention))
    kept: list[dict[str, Any]] = []
    total = 0
    for index, part in enumerate(converted):
        size = _text_size(part)
        if len(kept) >= MAX_BLOCKS - 1 and index < len(converted) - 1 or total + size > MAX_TOTAL_TEXT:
            dropped = len(converted) - index
            kept.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
                f"… {dropped} more part(s) not shown here (Slack's message limits); "
                "the full record is `/incident timeline`.")}]})
            break
        kept.append(part)
        total += size
    return kept


def fallback_text(reply: Reply, mention: Mention | None = None) -> str:
    """The notification text (always sent with blocks)."""
    return cut(mrkdwn(reply.text, mention), MAX_FALLBACK_TEXT)


def message_of(reply: Reply, mention: Mention | None = None) -> dict[str, Any]:
    """``text`` plus ``blocks`` (omitted for a one-line reply) for chat.postMessage/update."""
    message: dict[str, Any] = {"text": fallback_text(reply, mention)}
    if reply.blocks:
        message["blocks"] = blocks_of(reply, mention)
    return message
