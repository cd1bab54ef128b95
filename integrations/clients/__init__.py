"""Clients of the outside world, below the domain: they know nothing of incidents or
chat (Kubernetes, etcd, component control, Prometheus, HAProxy, the black-box
probes, PagerDuty, Opsgenie, issue trackers; ``pagers`` is the Protocol the paging
senders share).
"""

__all__ = ['components', 'etcd', 'haproxy', 'kubernetes', 'opsgenie', 'pagerduty', 'pagers', 'probes', 'prometheus', 'tickets']
