"""Black-box probes: exercise the control plane as a client would, and time it.

The talk's "black-box channel": rather than trusting metrics, ask each
apiserver whether it is ready and alive (``/readyz``, ``/livez``), write
through the apiserver to etcd (create, read back and delete a small
ConfigMap), and ask each etcd member for its health and status.

This package knows nothing of incidents.  A ``Check`` is a named callable
that returns a one-line detail or raises; ``run_checks`` runs a set of
checks in parallel with a deadline and returns a ``ProbeOutcome`` (ok,
latency, detail) for each.  ``customer`` adds the checks a customer would
notice: a pod scheduled and running, a StatefulSet scaled, nodes Ready.  The check builders take the clients of
``integrations.clients.kubernetes`` and ``integrations.clients.etcd`` by duck type (this
layer may not import its siblings); the composition root wires them.
"""

from integrations.clients.probes.checks import (
    Check,
    ProbeFailed,
    apiserver_checks,
    etcd_checks,
    write_path_check,
)
from integrations.clients.probes.customer import nodes_check, pod_check, statefulset_check
from integrations.clients.probes.runner import ProbeOutcome, run_checks

__all__ = ["Check", "ProbeFailed", "ProbeOutcome", "apiserver_checks", "etcd_checks", "nodes_check", "pod_check",
           "run_checks", "statefulset_check", "write_path_check",
           "customer"]  # the module: the sandbox and diagnosis run its pod probe directly
