"""The shipped playbooks: one module per playbook, each exposing ``PLAYBOOK``.

To add one, write ``playbooks/library/<name>.py`` declaring a
``playbooks.engine.Playbook`` (params, risk, blast radius, plan, steps with
check/do/undo/timeout, verify) and append its module path here.
"""

MODULES: list[str] = [
    "playbooks.library.throttle_client",
    "playbooks.library.failover_apiserver",
    "playbooks.library.failback_apiserver",
    "playbooks.library.snapshot_etcd",
    "playbooks.library.restore_etcd",
    "playbooks.library.disable_webhook",
    "playbooks.library.restart_component",
]

__all__ = ["MODULES"]
