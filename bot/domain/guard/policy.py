"""Which writes the guard looks at: the risk list (frozen during incidents) and the breaker's kinds.

Both come from ``guard`` in the settings (``GuardRule``, ``GuardBreakerSettings``), so operators
change what is risky without code. ``webhook_rules`` turns the same declarations into the
``rules`` of the ValidatingWebhookConfiguration, so the apiservers only call the bot for writes it
can decide on; anything else is allowed at once without a call.
"""

from __future__ import annotations

from typing import Any

from bot.core.config.guard import GuardRule, GuardSettings
from bot.domain.guard.review import AdmissionRequest


def matching_rule(settings: GuardSettings, request: AdmissionRequest) -> GuardRule | None:
    """The first risk-list rule that covers this write, or None."""
    for rule in settings.rules:
        if request.operation in rule.operations and request.resource_key in rule.resources \
                and (not rule.namespaces or request.namespace in rule.namespaces):
            return rule
    return None


def is_breaker_kind(settings: GuardSettings, request: AdmissionRequest) -> bool:
    return request.operation == "DELETE" and request.resource_key in settings.breaker.resources


def _split(resource: str) -> tuple[str, str]:
    group, _, name = resource.rpartition("/")
    return group, name


def webhook_rules(settings: GuardSettings) -> list[dict[str, Any]]:
    """``webhooks[].rules`` for the risk list and the breaker: one entry per (group, operations)."""
    wanted: dict[tuple[str, tuple[str, ...]], set[str]] = {}
    entries = [(r.resources, tuple(r.operations)) for r in settings.rules]
    entries.append((settings.breaker.resources, ("DELETE",)))
    for resources, operations in entries:
        for resource in resources:
            group, name = _split(resource)
            wanted.setdefault((group, tuple(sorted(operations))), set()).add(name)
    return [{"apiGroups": [group], "apiVersions": ["*"], "operations": list(ops), "resources": sorted(names),
             "scope": "*"} for (group, ops), names in sorted(wanted.items())]
