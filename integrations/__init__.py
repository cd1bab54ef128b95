"""Clients of the outside world, and the Slack adapter.

``slack`` sits above the chat layer (it turns neutral messages into Block Kit); every other package
is a client below the domain that knows nothing of incidents or chat (Kubernetes, etcd, Prometheus,
HAProxy, the black-box probes, component control, PagerDuty, Opsgenie, issue trackers).  ``pagers``
is the Protocol the paging senders use to reach PagerDuty and Opsgenie alike.
"""

__all__ = ["components", "etcd", "haproxy", "kubernetes", "opsgenie", "pagerduty", "pagers", "probes",
           "prometheus", "slack", "tickets"]
