"""failover-apiserver and failback-apiserver through chat, against a real HAProxy.

The main apiserver stand-in is stopped; the commander runs the failover from
chat and approves it; traffic through the LB's address must then reach the
bypass, and stay there across an HAProxy restart (server-state-file).
"""

from __future__ import annotations

import time

import pytest

from integrations.clients.haproxy import HAProxyLoadBalancer
from tests.playbooks_real.conftest import BACKEND, Crash, Lab
from tests.support.components import served_by, wait_until


def states(lab: Lab) -> dict[str, str]:
    return {k: v.value for k, v in HAProxyLoadBalancer(lab.haproxy.socket_path).read_states(BACKEND).items()}


def test_failover_moves_traffic_to_the_bypass_and_survives_a_reload(lab: Lab) -> None:
    lab.main.close()  # the main apiserver is gone
    lab.incident("main apiservers down")

    reply = lab.chat.say("alice", "/incident run failover-apiserver mode=maint")
    assert "RUN-1 failover-apiserver (high risk) awaits approval" in reply
    assert "bypass bypass" in reply and "main main" in reply and "→ maint" in reply
    assert lab.run_row(1).plan["facts"]["recorded"] == {"main": "ready", "bypass": "ready"}

    lab.chat.say("alice", "/incident approve RUN-1")  # the worker runs it at once

    run = lab.run_row(1)
    assert run.state == "succeeded", run.error
    assert states(lab) == {"main": "maint", "bypass": "ready"}
    assert {served_by(lab.frontend) for _ in range(5)} == {"bypass"}
    texts = "\n".join(lab.timeline_texts())
    assert "step 1/3 ready-bypass: already in place" in texts  # the bypass was ready already
    assert "step 2/3 move-main-off: done" in texts
    assert "step 3/3 persist-state: " in texts
    assert "verified: " in texts and "bypass took" in texts

    again = lab.chat.say("alice", "/incident plan failover-apiserver mode=drain")
    assert "refusing failover-apiserver on cluster prod: the main servers are already off (main maint" in again

    lab.haproxy.restart()  # a reload: the new process reads the server-state-file
    assert states(lab)["main"] == "maint"
    wait_until(lambda: served_by(lab.frontend) == "bypass", timeout=10, what="the bypass behind the new HAProxy")


def test_failover_refuses_when_a_bypass_is_not_ready(lab: Lab) -> None:
    lab.bypass.ready = False
    lab.incident("main apiservers down")

    reply = lab.chat.say("alice", "/incident run failover-apiserver")

    assert "refusing failover-apiserver on cluster prod: bypass bypass is not ready" in reply
    assert "500" in reply
    assert lab.engine.service.runs() == []
    assert states(lab) == {"main": "ready", "bypass": "ready"}


def test_failback_restores_the_recorded_states_once_main_is_ready(lab: Lab) -> None:
    lab.main.ready = False
    lab.incident("main apiserver not ready")
    lab.chat.say("alice", "/incident run failover-apiserver mode=drain")
    lab.chat.say("alice", "/incident approve RUN-1")
    assert lab.run_row(1).state == "succeeded"
    assert states(lab) == {"main": "drain", "bypass": "ready"}

    lab.incident("fail back to main")  # a new incident for the failback
    refused = lab.chat.say("alice", "/incident run failback-apiserver")
    assert "refusing failback-apiserver on cluster prod: main main is not ready" in refused

    lab.main.ready = True
    reply = lab.chat.say("alice", "/incident run failback-apiserver")
    assert "RUN-2 failback-apiserver" in reply and "drain → ready" in reply
    lab.chat.say("alice", "/incident approve RUN-2")

    assert lab.run_row(2).state == "succeeded", lab.run_row(2).error
    assert states(lab) == {"main": "ready", "bypass": "ready"}
    wait_until(lambda: served_by(lab.frontend) == "main", timeout=10, what="traffic back on main")


def test_undo_of_a_failover_puts_the_recorded_states_back(lab: Lab) -> None:
    lab.incident("main apiservers down")
    lab.chat.say("alice", "/incident run failover-apiserver mode=maint")
    lab.chat.say("alice", "/incident approve RUN-1")
    assert states(lab) == {"main": "maint", "bypass": "ready"}

    lab.chat.say("alice", "/incident abort RUN-1")  # undo a succeeded, reversible run

    assert lab.run_row(1).state == "rolled_back"
    assert states(lab) == {"main": "ready", "bypass": "ready"}


def test_a_crash_after_a_change_resumes_without_repeating_it(lab: Lab) -> None:
    lab.main.close()
    lab.incident("main apiservers down")
    lab.chat.say("alice", "/incident run failover-apiserver mode=maint")

    def die(label: str, run_id: int) -> None:
        if label == "step:1:done":  # main is in maint, the checkpoint is not written yet
            raise Crash(label)

    lab.engine.executor.hooks.append(die)
    with pytest.raises(Crash):
        lab.chat.say("alice", "/incident approve RUN-1")
    assert lab.run_row(1).state == "running" and lab.run_row(1).checkpoint == 1
    assert states(lab)["main"] == "maint"

    lab.new_engine()  # the restarted process
    lab.clock.advance(lab.bot.settings.playbooks.stale_after_seconds + 1)
    lab.chat.pump()

    run = lab.run_row(1)
    assert run.state == "succeeded", run.error
    texts = "\n".join(lab.timeline_texts())
    assert "resumed after its worker stopped" in texts
    assert "step 2/3 move-main-off: already in place" in texts
    assert texts.count("move-main-off: done") == 0
    assert served_by(lab.frontend) == "bypass"


def test_a_sigkilled_engine_process_is_resumed_without_repeating_a_change(lab: Lab) -> None:
    lab.main.close()
    lab.incident("main apiservers down")
    lab.chat.say("alice", "/incident run failover-apiserver mode=maint")
    lab.pause_worker()
    lab.chat.say("alice", "/incident approve RUN-1")
    assert lab.run_row(1).state == "approved"

    proc = lab.run_and_kill(1, "step:1:done")  # main put in maint, then the process dies

    assert proc.returncode == -9, proc.stdout + proc.stderr
    assert lab.run_row(1).state == "running" and lab.run_row(1).checkpoint == 1
    assert states(lab)["main"] == "maint"
    lab.new_engine()
    lab.clock.advance(lab.bot.settings.playbooks.stale_after_seconds + 1)
    lab.chat.pump()

    run = lab.run_row(1)
    assert run.state == "succeeded", run.error
    texts = "\n".join(lab.timeline_texts())
    assert "resumed after its worker stopped" in texts
    assert "step 2/3 move-main-off: already in place" in texts
    assert served_by(lab.frontend) == "bypass"


def test_a_failed_verification_rolls_back_to_the_recorded_states(lab: Lab) -> None:
    lab.bot.settings.clusters["prod"].loadbalancer.frontend_url = "http://127.0.0.1:9"  # clients cannot reach it
    lab.incident("main apiservers down")
    lab.chat.say("alice", "/incident run failover-apiserver mode=maint")
    lab.chat.say("alice", "/incident approve RUN-1")

    run = lab.run_row(1)
    assert run.state == "rolled_back" and "verification failed" in (run.error or "")
    assert states(lab) == {"main": "ready", "bypass": "ready"}
    texts = "\n".join(lab.timeline_texts())
    assert "undo move-main-off: done" in texts and "undo ready-bypass: done" in texts


def _open_watch(lab: Lab):  # type: ignore[no-untyped-def]
    import httpx

    client = httpx.Client(timeout=5, trust_env=False)
    stream = client.stream("GET", lab.frontend + "/watch")
    response = stream.__enter__()
    lines = response.iter_lines()
    assert next(lines) == "main tick"
    return client, stream, lines


def test_drain_keeps_an_open_watch_on_main_while_new_requests_go_to_the_bypass(lab: Lab) -> None:
    client, stream, lines = _open_watch(lab)
    try:
        lab.incident("main apiserver degraded")
        lab.chat.say("alice", "/incident run failover-apiserver mode=drain")
        lab.chat.say("alice", "/incident approve RUN-1")
        assert lab.run_row(1).state == "succeeded", lab.run_row(1).error

        assert served_by(lab.frontend) == "bypass"
        seen = [next(lines) for _ in range(50)]  # the watch through main keeps flowing
        assert set(seen) == {"main tick"}
    finally:
        stream.__exit__(None, None, None)
        client.close()


def test_maint_cuts_the_open_watch(lab: Lab) -> None:
    import httpx

    client, stream, lines = _open_watch(lab)
    try:
        lab.incident("main apiserver broken")
        lab.chat.say("alice", "/incident run failover-apiserver mode=maint")
        lab.chat.say("alice", "/incident approve RUN-1")
        assert lab.run_row(1).state == "succeeded", lab.run_row(1).error

        deadline = time.monotonic() + 5
        while True:  # what was buffered, then the end
            try:
                next(lines)
            except (StopIteration, httpx.HTTPError):
                break
            if time.monotonic() > deadline:
                pytest.fail("the watch through main still streams after maint")
    finally:
        stream.__exit__(None, None, None)
        client.close()
