"""Plain-text rendering of neutral messages (console, logs, fallbacks)."""

from __future__ import annotations

from bot.chat.messages import Bullets, Buttons, Clocks, Code, Divider, Fields, Heading, Paragraph, Reply

MARK = {"met": "✓", "breached": "✗", "running": "…", "warning": "!", "stopped": "–"}


def render(reply: Reply) -> str:
    if not reply.blocks:
        return reply.text
    out: list[str] = []
    for block in reply.blocks:
        if isinstance(block, Heading):
            out.append(block.text)
        elif isinstance(block, Paragraph):
            out.append(block.text)
        elif isinstance(block, Fields):
            width = max((len(k) for k, _ in block.pairs), default=0)
            out.extend(f"  {k.ljust(width)}  {v}" for k, v in block.pairs)
        elif isinstance(block, Bullets):
            out.extend(f"  • {item}" for item in block.items)
        elif isinstance(block, Clocks):
            out.append("  Clocks (1-5-10):")
            out.extend(f"    {MARK.get(c.verdict, ' ')} {c.text}" for c in block.lines)
        elif isinstance(block, Buttons):
            out.append("  " + "  ".join(f"[{b.label}: /incident {b.action_id.split('_')[-1]} RUN-{b.value.split(':')[0]}]" for b in block.buttons))
        elif isinstance(block, Code):
            out.extend("    " + line for line in block.text.splitlines())
        elif isinstance(block, Divider):
            out.append("  ----")
    return "\n".join(out)
