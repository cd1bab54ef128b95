"""Incidents: the domain's centre (declared or grouped from alerts, moved along the lifecycle).

Domain layer: above ``bot.domain.slo`` and ``bot.domain.guard``, below ``bot.domain.diagnosis`` and ``bot.domain.export``.
Public modules:

* ``service`` — ``Incidents``, every verb that changes an incident (one transaction each),
  ``IncidentView``, ``parse_ref`` / ``ref_of`` (the one place ``INC-<id>`` is written and read);
* ``lifecycle`` — the transitions table; ``acks`` — acknowledging a page; ``roles`` — who is commander;
* ``alerts`` and ``alert_payload`` — Alertmanager's webhook stored and grouped into incidents;
* ``probe_findings`` — failed black-box probes as incidents;
* ``editing`` (severity, title, merge, link), ``fleet`` (one incident across clusters);
* ``review``, ``action_items``, ``tracking``, ``search`` — after the incident.

``grouping``, ``alert_rules``, ``alert_tally``, ``alert_joining`` and ``alert_notices`` serve ``alerts`` only.
"""

__all__ = ["acks", "action_items", "alert_payload", "alerts", "editing", "fleet", "lifecycle", "probe_findings",
           "review", "roles", "search", "service", "tracking"]
