"""Process control of control-plane components (kube-scheduler, kube-controller-manager, ...).

The restore-etcd playbook stops and starts etcd members through ``integrations.clients.etcd.control``;
this is the same seam for the components that only talk to the API: a playbook says
``restart("kube-scheduler")`` and the site decides how (``CommandComponentController``: shell
templates, e.g. over ssh or systemd; the sandbox's ``bot.compose.sandbox.components.LocalComponents``:
child processes; ``FakeComponents`` beside them for unit tests).
"""

from integrations.clients.components.control import (
    CommandComponentController,
    ComponentController,
    FakeComponents,
)

__all__ = ["CommandComponentController", "ComponentController", "FakeComponents"]
