"""The declare modal: a form for ``/incident declare`` (global shortcut, or the verb without a title).

Its submission is checked while Slack waits for the ack (the only moment a
modal can show field errors, ``response_action=errors``); what passes becomes
an ordinary ``/incident declare`` line for the dispatcher.
"""

from __future__ import annotations

import shlex
from typing import Any

from bot.chat import grammar
from bot.core.config.base import SEVERITIES
from bot.core.errors import BadInput

CALLBACK_ID = "declare_modal"
SHORTCUT_ID = "declare_incident"
MAX_TITLE = 200


def _option(severity: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": severity}, "value": severity}


def declare_view(*, severity: str = "sev2", cluster: str | None = None, channel: str | None = None) -> dict[str, Any]:
    """The modal; ``channel`` (where the command was typed) travels in private_metadata."""
    cluster_element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "max_length": 80,
                                       "placeholder": {"type": "plain_text", "text": "default cluster"}}
    if cluster:
        cluster_element["initial_value"] = cluster
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": channel or "",
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": "title", "label": {"type": "plain_text", "text": "What is wrong?"},
             "element": {"type": "plain_text_input", "action_id": "value", "max_length": MAX_TITLE,
                         "placeholder": {"type": "plain_text", "text": "apiserver 5xx in prod-1"}}},
            {"type": "input", "block_id": "severity", "label": {"type": "plain_text", "text": "Severity"},
             "element": {"type": "static_select", "action_id": "value",
                         "options": [_option(s) for s in SEVERITIES],
                         "initial_option": _option(severity if severity in SEVERITIES else "sev2")}},
            {"type": "input", "block_id": "cluster", "optional": True,
             "label": {"type": "plain_text", "text": "Cluster"}, "element": cluster_element},
        ],
    }


def _value(values: dict[str, Any], block: str) -> str:
    element = (values.get(block) or {}).get("value") or {}
    if element.get("type") == "static_select" or "selected_option" in element:
        return str(((element.get("selected_option") or {}).get("value")) or "")
    return str(element.get("value") or "").strip()


def submission_line(view: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The ``/incident declare`` line for a submitted modal, or the errors to show per field."""
    values = (view.get("state") or {}).get("values") or {}
    title, severity, cluster = _value(values, "title"), _value(values, "severity"), _value(values, "cluster")
    errors: dict[str, str] = {}
    if not title:
        errors["title"] = "Say what is wrong, e.g. “apiserver 5xx in prod-1”."
    elif len(title) > MAX_TITLE:
        errors["title"] = f"Keep the title under {MAX_TITLE} characters (it has {len(title)})."
    elif title.startswith("-"):
        errors["title"] = "Start the title with a word, not a dash."
    if severity not in SEVERITIES:
        errors["severity"] = f"Pick one of {', '.join(SEVERITIES)}."
    if cluster and (" " in cluster or cluster.startswith("-")):
        errors["cluster"] = "A cluster name is one word, e.g. prod-1."
    if errors:
        return None, errors
    line = f"declare {shlex.quote(title)} --severity {severity}" + (f" --cluster {shlex.quote(cluster)}" if cluster else "")
    try:
        grammar.parse(line)
    except BadInput as exc:
        return None, {exc.field if exc.field in {"title", "severity", "cluster"} else "title": exc.message}
    return line, {}


def wants_modal(text: str) -> dict[str, str] | None:
    """``declare`` with options but no title opens the modal; returns the options to prefill."""
    try:
        tokens = shlex.split(text)
    except ValueError:
        return None
    if not tokens or tokens[0].lower() != "declare":
        return None
    options: dict[str, str] = {}
    rest = tokens[1:]
    i = 0
    while i < len(rest):
        token = rest[i]
        if token.startswith("--"):
            key, _, inline = token[2:].partition("=")
            if not inline and i + 1 < len(rest):
                inline = rest[i + 1]
                i += 1
            options[key] = inline
        else:
            return None  # there is a title: an ordinary command
        i += 1
    return options
