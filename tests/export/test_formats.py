"""The three formats: JSON valid against its schema, HTML self-contained with a real chart, both stable."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.errors import BadInput
from bot.domain.export import export_incident
from tests.export import scenarios

SVG = "{http://www.w3.org/2000/svg}"
CHROMIUM = "/usr/bin/chromium"


def export(bot: Bot, fmt: str, ref: str = "INC-1", **kw: object) -> str:
    return export_incident(bot.db, bot.settings, ref, fmt=fmt, **kw).content  # type: ignore[arg-type]


def build_all(bot: Bot, chat: MemoryChat, clock: FakeClock) -> list[str]:
    scenarios.all_met(chat, clock)
    scenarios.breached(chat, clock)
    scenarios.cancelled(chat, clock)
    scenarios.failed_then_successful_mitigation(bot, chat, clock)
    return ["INC-1", "INC-2", "INC-3", "INC-4"]


def svg_of(html: str) -> ET.Element:
    match = re.search(r"<svg\b.*?</svg>", html, re.DOTALL)
    assert match, "the HTML has no SVG chart"
    return ET.fromstring(match.group(0))


def test_every_json_export_validates_against_the_schema(chat: MemoryChat, bot: Bot, clock: FakeClock,
                                                        schema_validator) -> None:  # type: ignore[no-untyped-def]
    for ref in build_all(bot, chat, clock):
        for tz in (None, "Europe/Berlin"):
            doc = json.loads(export(bot, "json", ref, tz=tz))
            errors = sorted(schema_validator.iter_errors(doc), key=lambda e: list(e.path))
            assert not errors, f"{ref}: {errors[0].message} at {list(errors[0].path)}"
            assert doc["schema_version"] == "2"


def test_the_schema_refuses_a_document_that_breaks_it(chat: MemoryChat, bot: Bot, clock: FakeClock,
                                                      schema_validator) -> None:  # type: ignore[no-untyped-def]
    scenarios.cancelled(chat, clock)
    doc = json.loads(export(bot, "json"))
    doc["slo"]["stages"][0]["verdict"] = "sort of"
    assert not schema_validator.is_valid(doc)


def test_the_html_chart_has_the_budget_marks_and_a_bar_per_stage(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    scenarios.breached(chat, clock)
    svg = svg_of(export(bot, "html"))
    marks = {m.get("data-stage"): float(m.get("x1")) for m in svg.iter(f"{SVG}line")  # type: ignore[arg-type]
             if "budget-mark" in (m.get("class") or "")}
    assert set(marks) == {"notify", "diagnose", "mitigate"}
    assert marks["notify"] < marks["diagnose"] < marks["mitigate"]
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "budget-label"]
    assert labels == ["1 min", "5 min", "10 min"]
    bars = {b.get("data-stage"): b for b in svg.iter(f"{SVG}rect") if "stage-bar" in (b.get("class") or "")}
    assert set(bars) == {"notify", "diagnose", "mitigate"}
    assert bars["diagnose"].get("data-verdict") == "breached"
    # a breached stage's bar reaches past its budget mark; a met one stops before it
    end = {stage: float(b.get("x")) + float(b.get("width")) for stage, b in bars.items()}  # type: ignore[arg-type]
    assert end["diagnose"] > marks["diagnose"] and end["mitigate"] > marks["mitigate"]
    assert end["notify"] <= marks["notify"]
    ticks = [t for t in svg.iter(f"{SVG}line") if "event-tick" in (t.get("class") or "")]
    assert ticks and sum(int(t.get("data-count")) for t in ticks) == len(json.loads(export(bot, "json"))["timeline"])  # type: ignore[arg-type]


def test_the_chart_uses_the_incidents_own_budgets(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    from bot.core.config.budgets import StageBudgets

    bot.settings.budgets.sev3 = StageBudgets(notify=120, diagnose=900, mitigate=1800)
    scenarios.cancelled(chat, clock)  # a sev3
    svg = svg_of(export(bot, "html"))
    labels = [t.text for t in svg.iter(f"{SVG}text") if "budget-label" in (t.get("class") or "")]
    assert labels == ["2 min", "→ 15 min", "→ 30 min"]  # a 2-minute incident: the later budgets are off its axis
    bars = {b.get("data-stage"): b.get("data-verdict") for b in svg.iter(f"{SVG}rect") if b.get("data-stage")}
    assert bars == {"notify": "met", "diagnose": "never-reached", "mitigate": "never-reached"}


def test_the_html_is_self_contained_and_renders_in_chromium(chat: MemoryChat, bot: Bot, clock: FakeClock,
                                                            tmp_path: Path) -> None:
    scenarios.failed_then_successful_mitigation(bot, chat, clock)
    html = export(bot, "html")
    assert "<style>" in html
    for external in ("<link", "<script", "src=", "@import", "url("):
        assert external not in html
    page = tmp_path / "INC-1.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "shot.png"
    assert shutil.which(CHROMIUM), "chromium is part of the machine set-up (Debian package chromium)"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a rendered page, not a blank one


def test_two_exports_are_byte_identical(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    refs = build_all(bot, chat, clock)
    for ref in refs:
        for fmt in ("md", "json", "html"):
            first = export(bot, fmt, ref)
            clock.advance(3600)  # the wall clock moving on changes nothing
            assert export(bot, fmt, ref) == first, (ref, fmt)


def test_generated_at_appears_only_when_passed(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    from datetime import datetime, timezone

    scenarios.cancelled(chat, clock)
    assert "generated" not in export(bot, "md")
    stamped = export(bot, "md", generated_at=datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc))
    assert "generated 2026-11-26 09:00:00" in stamped


def test_times_in_the_readers_zone(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    scenarios.all_met(chat, clock)
    md = export(bot, "md", tz="Europe/Berlin")
    assert "Times are in Europe/Berlin." in md
    assert "| Fault began (T0) | 2026-11-25 04:00:00 |" in md  # 03:00 UTC is 04:00 in Berlin in November
    assert "| Time (Europe/Berlin) | T+ |" in md
    doc = json.loads(export(bot, "json", tz="America/New_York"))
    assert doc["export"]["timezone"] == "America/New_York"
    assert doc["incident"]["times"]["started_at"] == "2026-11-24T22:00:00-05:00"
    assert "times in Asia/Tokyo" in export(bot, "html", tz="Asia/Tokyo")


def test_a_bad_zone_or_format_is_a_clear_error(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    scenarios.cancelled(chat, clock)
    with pytest.raises(BadInput) as bad_tz:
        export(bot, "md", tz="Mars/Olympus_Mons")
    assert bad_tz.value.message == ("`Mars/Olympus_Mons` is not a time zone; expected an IANA name such as "
                                    "Europe/Berlin, America/New_York or UTC.")
    assert bad_tz.value.field == "tz"
    with pytest.raises(BadInput) as bad_fmt:
        export(bot, "pdf")
    assert bad_fmt.value.message == "format must be one of md, json, html, not `pdf`."


def test_postgresql_exports_the_same_document_as_sqlite(postgres_url: str, sqlite_url: str) -> None:
    """The evidence column comes back as JSON text on both stores; the documents agree byte for byte."""
    from bot.compose.app.bot import build_bot
    from bot.chat.memory import MemoryChat
    from tests.conftest import T0, make_settings

    outputs = []
    for url in (sqlite_url, postgres_url):
        clock = FakeClock(T0)
        b = build_bot(make_settings(url), clock=clock, extensions=["bot.compose.app.export"])
        try:
            chat = MemoryChat(b.dispatcher, workers=b.workers)
            scenarios.failed_then_successful_mitigation(b, chat, clock)
            chat.say("alice", "/incident note token=s3cr3t-value-123 in the evidence")
            outputs.append([export(b, fmt) for fmt in ("md", "json", "html")])
        finally:
            b.close()
    assert outputs[0] == outputs[1]
    assert "s3cr3t-value-123" not in "".join(outputs[0])
