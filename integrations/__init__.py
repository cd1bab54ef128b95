"""The outside world, in two layers that the folders show.

``adapters`` sit above the chat layer (``slack`` turns neutral messages into Block Kit and Slack's
requests into chat commands); ``clients`` sit below the domain and know nothing of incidents or
chat (Kubernetes, etcd, component control, Prometheus, HAProxy, the black-box probes, PagerDuty,
Opsgenie, issue trackers).
"""

__all__ = ["adapters", "clients"]
