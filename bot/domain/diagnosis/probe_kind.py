"""Check kind ``probe``: run a customer probe on demand and take its outcome as evidence.

The scheduled customer probes say *that* customers' pods stopped running; during a diagnosis the
question is whether they still do *now*, and which stage a fresh pod sticks in (no node assigned:
the scheduler's side; bound but not running: the nodes'). So a procedure may run one itself:

* ``probe: pod`` — create a pod, see it scheduled and running, delete it;
* ``probe: statefulset`` — scale the probe StatefulSet up and back down;
* ``probe: bypass`` — the write path through each bypass apiserver.

Facts: ``ok`` (every run succeeded), ``failed`` (how many did not), ``seconds`` (the slowest),
``stuck`` (``scheduling``/``running``/``None``), ``node``, ``stages`` and ``runs`` (one per
apiserver for ``bypass``). A failed probe is a known answer, not an unknown check: the failure
*is* the evidence. The check's ``timeout`` is the probe's deadline, so give it one longer than a
healthy pod needs (e.g. 10 s): a pod nobody schedules takes exactly that long to be sure of.
"""

from __future__ import annotations

from typing import Any

from bot.domain.diagnosis.kind_types import Facts, Field, Kind
from bot.domain.diagnosis.ports import ClusterAccess
from bot.core.errors import ConfigError

PROBES = ("pod", "statefulset", "bypass")
HEADROOM_SECONDS = 0.5  # the probe gives up a little before the check's deadline, so its answer is seen


def _probe(access: ClusterAccess, params: dict[str, Any], timeout: float) -> Facts:
    if access.customer is None:
        raise ConfigError(f"no customer probes are configured for cluster {access.name} "
                          f"(probes.clusters.{access.name}.customer_probes and a kubeconfig)")
    probe = str(params["probe"])
    answers = access.customer.run(probe, deadline_seconds=max(1.0, timeout - HEADROOM_SECONDS))
    if not answers:
        raise ConfigError(f"the {probe} probe has nothing to probe on cluster {access.name} "
                          + ("(no bypass apiservers are configured)" if probe == "bypass" else ""))
    failed = [a for a in answers if not a.ok]
    first = failed[0] if failed else answers[0]
    runs = [{"target": a.target, "ok": a.ok, "seconds": round(a.seconds, 3), "detail": a.detail[:500],
             "stuck": a.stuck, "node": a.node, "stages": dict(a.stages)} for a in answers]
    facts = {"ok": not failed, "failed": len(failed), "total": len(answers),
             "seconds": round(max(a.seconds for a in answers), 3), "stuck": first.stuck, "node": first.node,
             "stages": dict(first.stages), "detail": first.detail, "runs": runs}
    if len(answers) == 1:
        verdict = "succeeds" if first.ok else "FAILS"
        summary = f"{probe} probe {verdict} in {first.seconds:.1f} s: {first.detail}"
    else:
        summary = (f"{probe} probe: {len(answers) - len(failed)}/{len(answers)} succeed; "
                   + "; ".join(f"{a.target} {'ok' if a.ok else 'FAILS: ' + a.detail} ({a.seconds:.1f} s)"
                               for a in answers))
    return Facts(facts, summary, {"probe": probe, **facts})


PROBE_KIND = Kind("probe", "run a customer probe now (a pod scheduled and running, a StatefulSet scaled, the "
                  "write path through the bypass apiservers); its outcome and latency are the evidence", {
                      "probe": Field("str", True, PROBES, doc="pod | statefulset | bypass"),
                  }, _probe)
