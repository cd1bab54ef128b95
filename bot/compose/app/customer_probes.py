"""The customer probes on demand, for diagnosis (check kind ``probe``): wiring of ``CustomerProber``.

The domain (``bot.domain.diagnosis.probe_kind``) asks for ``pod``, ``statefulset`` or ``bypass`` and gets
outcomes; here they are run with ``integrations.clients.probes.customer`` through the cluster's own
kubeconfig, in the probes' namespace, exactly as the scheduled customer prober runs them (so an
on-demand probe and a scheduled one mean the same thing), and the bypass write path through each
bypass apiserver with the kubeconfig's user and CA.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from bot.domain.diagnosis.ports import CustomerProbeAnswer
from integrations.clients.probes.customer import PodStuck, run_pod_probe, run_statefulset_probe


class CustomerProbes:
    """``CustomerProber`` over one cluster's Kubernetes client (and one client per bypass apiserver)."""

    def __init__(self, client: Any, namespace: str, *, replicas: int = 2,
                 bypass: Sequence[tuple[str, Callable[[], Any]]] = (),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.namespace = namespace
        self.replicas = replicas
        self.bypass = list(bypass)  # (URL, a factory of a client speaking to that apiserver only)
        self.monotonic = monotonic

    def run(self, probe: str, *, deadline_seconds: float) -> list[CustomerProbeAnswer]:
        if probe == "pod":
            return [self._pod(deadline_seconds)]
        if probe == "statefulset":
            return [self._statefulset(deadline_seconds)]
        if probe == "bypass":
            return [self._write(url, factory) for url, factory in self.bypass]
        raise ValueError(f"unknown customer probe {probe!r}; expected pod, statefulset or bypass")

    def _pod(self, deadline: float) -> CustomerProbeAnswer:
        target = f"pod {self.namespace}"
        started = self.monotonic()
        try:
            stages = run_pod_probe(self.client, self.namespace, deadline_seconds=deadline, monotonic=self.monotonic)
        except PodStuck as stuck:
            s = stuck.stages
            return CustomerProbeAnswer(target, False, self.monotonic() - started, str(stuck), stuck=stuck.stage,
                                       node=s.node, stages={"accepted": s.accepted, "scheduled": s.scheduled,
                                                            "running": s.running})
        except Exception as exc:  # the API refused or did not answer: the probe's finding
            return CustomerProbeAnswer(target, False, self.monotonic() - started, str(exc))
        return CustomerProbeAnswer(target, True, stages.running or 0.0, stages.text(), node=stages.node,
                                   stages={"accepted": stages.accepted, "scheduled": stages.scheduled,
                                           "running": stages.running})

    def _statefulset(self, deadline: float) -> CustomerProbeAnswer:
        target = f"statefulset {self.namespace}"
        started = self.monotonic()
        try:
            took = run_statefulset_probe(self.client, self.namespace, replicas=self.replicas,
                                         deadline_seconds=deadline, monotonic=self.monotonic)
        except Exception as exc:
            return CustomerProbeAnswer(target, False, self.monotonic() - started, str(exc))
        return CustomerProbeAnswer(target, True, took["up"] + took["down"],
                                   f"{self.replicas} replicas ready in {took['up'] * 1000:.0f} ms, back to 0 in "
                                   f"{took['down'] * 1000:.0f} ms", stages=dict(took))

    def _write(self, url: str, factory: Callable[[], Any]) -> CustomerProbeAnswer:
        target = f"write-path {self.namespace} via {url}"
        started = self.monotonic()
        client = factory()
        try:
            result = client.write_probe(self.namespace)
        except Exception as exc:
            return CustomerProbeAnswer(target, False, self.monotonic() - started, str(exc))
        finally:
            closer = getattr(client, "close", None)
            if callable(closer):
                closer()
        steps = ", ".join(f"{s.operation} {s.seconds * 1000:.0f} ms" for s in result.steps)
        return CustomerProbeAnswer(target, True, self.monotonic() - started, steps)

    def close(self) -> None:
        closer = getattr(self.client, "close", None)
        if callable(closer):
            closer()


def for_cluster(settings: Any, name: str, config: dict[str, Any], timeout: float) -> CustomerProbes | None:
    """The on-demand probes of cluster ``name``, when it has customer probes and a kubeconfig."""
    from bot.compose.app.probing import probe_clusters
    from integrations.clients.kubernetes import connect

    probe = probe_clusters(settings).get(name)
    kubeconfig = (probe.kubeconfig if probe is not None else None) or config.get("kubeconfig")
    if probe is None or not probe.customer_probes or not kubeconfig:
        return None
    context = probe.kube_context or config.get("kube_context")
    urls = list(probe.bypass_apiservers) or list((config.get("apiservers") or {}).get("bypass") or [])

    def bypass_client(url: str) -> Callable[[], Any]:
        def make() -> Any:
            client = connect(kubeconfig, context, timeout=timeout)
            client.api_client.configuration.host = url.rstrip("/")  # the kubeconfig's user and CA, not its server
            return client
        return make

    return CustomerProbes(connect(kubeconfig, context, timeout=min(5.0, timeout)), settings.probes.namespace,
                          replicas=settings.probes.statefulset_replicas,
                          bypass=[(url, bypass_client(url)) for url in urls])
