"""Alertmanager webhook (version 4) bodies shaped like the captured ones of research part D.2."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

ZERO = "0001-01-01T00:00:00Z"


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def alert(name: str, starts: datetime, *, status: str = "firing", ends: datetime | None = None,
          severity: str = "critical", **labels: str) -> dict[str, Any]:
    all_labels = {"alertname": name, "severity": severity, **labels}
    fp = hashlib.sha256(json.dumps(all_labels, sort_keys=True).encode()).hexdigest()[:16]
    if status == "resolved" and ends is None:
        ends = starts + timedelta(seconds=30)
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{name} on {labels.get('instance', labels.get('job', 'the cluster'))}"},
        "startsAt": iso(starts),
        "endsAt": iso(ends) if ends else ZERO,
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
        "fingerprint": fp,
    }


def webhook(*alerts: dict[str, Any], group: str = "{}:{alertname=\"x\"}") -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    common = dict(alerts[0]["labels"]) if alerts else {}
    return {
        "receiver": "incident-bot",
        "status": "firing" if firing else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": common.get("alertname", "")},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
    }
