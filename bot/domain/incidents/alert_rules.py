"""From alert labels to incident fields: severity, cluster, component, who is paged.

Configurable rules (``alerting.rules``) come first: the first rule whose
``match`` (exact) and ``match_re`` (full-match regular expressions) all hold
decides the fields it sets; fields a rule leaves empty fall through to the
defaults below, which read the labels every Prometheus rule of
``deploy/prometheus/rules.yml`` carries (``severity``, ``component``,
``cluster``) and infer the component from ``job``/``alertname`` otherwise
(``etcd*`` -> etcd, ``KubeAPI*``/``apiserver*`` -> apiserver, ...), so
upstream mixin alerts group correctly without any configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from bot.core.config.base import SEVERITIES
from bot.core.config.detection import Alerting, AlertRule

# Alert severity label -> incident severity; anything else (or nothing) is sev3.
SEVERITY_OF_LABEL = {
    "critical": "sev1", "page": "sev1", "emergency": "sev1", "sev1": "sev1",
    "error": "sev2", "warning": "sev2", "major": "sev2", "sev2": "sev2",
    "info": "sev3", "minor": "sev3", "none": "sev3", "sev3": "sev3",
}
DEFAULT_SEVERITY = "sev3"

# (pattern over job and alertname, component); first hit wins, so the specific come first.
COMPONENT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), c) for p, c in (
        (r"etcd", "etcd"),
        (r"kube-?api|apiserver|^KubeAPI", "apiserver"),
        (r"scheduler", "scheduler"),
        (r"controller-?manager", "controller-manager"),
        (r"kubelet|^KubeNode|^node", "kubelet"),
        (r"coredns|kube-?dns", "dns"),
        (r"kube-?proxy", "kube-proxy"),
    )
)
OTHER_COMPONENT = "other"


@dataclass(frozen=True)
class Classification:
    severity: str
    cluster: str
    component: str
    page: tuple[str, ...] = ()

    @property
    def group_key(self) -> str:
        return group_key(self.cluster, self.component)


def group_key(cluster: str, component: str) -> str:
    """Alerts and probe failures of one component in one cluster belong together."""
    return f"{cluster}/{component}"


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def rule_matches(rule: AlertRule, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in rule.match.items()):
        return False
    return all(_compiled(p).fullmatch(labels.get(k, "")) for k, p in rule.match_re.items())


def infer_component(labels: dict[str, str], component_label: str = "component") -> str:
    explicit = labels.get(component_label, "").strip()
    if explicit:
        return explicit.lower()
    for source in (labels.get("job", ""), labels.get("alertname", ""), labels.get("container", "")):
        for pattern, component in COMPONENT_PATTERNS:
            if source and pattern.search(source):
                return component
    return OTHER_COMPONENT


def severity_of(labels: dict[str, str]) -> str:
    return SEVERITY_OF_LABEL.get(labels.get("severity", "").strip().lower(), DEFAULT_SEVERITY)


def classify(labels: dict[str, str], alerting: Alerting) -> Classification:
    """The incident fields an alert with these labels maps to."""
    rule = next((r for r in alerting.rules if rule_matches(r, labels)), None)
    severity = (rule.severity if rule and rule.severity else severity_of(labels)).lower()
    if severity not in SEVERITIES:
        severity = DEFAULT_SEVERITY
    cluster = (rule.cluster if rule and rule.cluster else None) \
        or labels.get(alerting.cluster_label, "").strip() or alerting.default_cluster
    component = (rule.component if rule and rule.component else None) \
        or infer_component(labels, alerting.component_label)
    return Classification(severity=severity, cluster=cluster, component=component,
                          page=tuple(rule.page) if rule else ())


def more_severe(a: str, b: str) -> str:
    """sev1 is more severe than sev2."""
    return min(a, b, key=SEVERITIES.index)
