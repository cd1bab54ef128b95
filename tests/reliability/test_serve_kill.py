"""``incident-bot serve`` SIGKILLed in the middle of every shipped playbook, on SQLite and PostgreSQL.

The fast version (every test run) kills each playbook once per database: on SQLite
inside its last step (entered, no checkpoint yet), on PostgreSQL after its first
step's checkpoint; restore-etcd inside restore-data and after start-members
(``FAST_SQLITE``, ``FAST_POSTGRES``).  The full matrix (inside and after every step)
is marked ``long`` and deselected by default (``addopts -m "not long"``); run it with

    .venv/bin/python -m pytest -m long tests/reliability/test_serve_kill.py -p no:cacheprovider -s

(``-k restore`` for restore-etcd's alone).  After each kill ``serve`` is started
again and must finish the run: each change made once in the real world, each step
once on the timeline, every Slack message and page delivered once (see ``serve_kill``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.playbook_world import World, build_world
from tests.reliability.serve_kill import KillPoint, Outcome, pager_fake, run_chain
from tests.support.components import EtcdCluster, HAProxy, StubApiserver
from tests.support.fake_pagers import FakePagerDuty
from tests.support.fake_slack import FakeSlack
from tests.support.kube_apiserver import RealCluster

STEPS = {"snapshot-etcd": 1, "throttle-client": 3, "disable-webhook": 2, "restart-component": 2,
         "failover-apiserver": 3, "failback-apiserver": 3, "restore-etcd": 6}
# restore-etcd's last step (the apiservers back at HAProxy) takes milliseconds: the fast tests kill it
# where the restore itself is at stake -- inside restore-data on SQLite (half-written data dirs), and
# after start-members on PostgreSQL (the restored members run, nobody has checked them yet)
FAST_SQLITE = {"restore-etcd": KillPoint(2, inside=True)}
FAST_POSTGRES = {"restore-etcd": KillPoint(3, inside=False)}


@pytest.fixture
def world(tmp_path: Path, kube_apiserver: RealCluster, bot_kubeconfig: Path,
          stub_apiserver_factory: Callable[..., StubApiserver], haproxy_factory: Callable[..., HAProxy],
          etcd_cluster_factory: Callable[..., EtcdCluster]) -> Iterator[World]:
    built = build_world(tmp_path, kube_apiserver, bot_kubeconfig, stub_apiserver_factory, haproxy_factory,
                        etcd_cluster_factory)
    try:
        yield built
    finally:
        built.cleanup()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.delay_seconds = 0.1  # slow: cards and notes are in flight when serve is killed
    yield fake
    fake.stop()


@pytest.fixture
def pager() -> Iterator[FakePagerDuty]:
    fake = pager_fake()
    yield fake
    fake.stop()


def check(outcome: Outcome, plan: dict[str, list[KillPoint]], *, allow_missed: bool = False) -> None:
    """``allow_missed``: in the full matrix a step of a few milliseconds may be passed between two reads
    of the database; such a point is printed as missed and the run goes on to its next point."""
    print(outcome.line())
    for kill in outcome.kills:
        print(f"  {kill.playbook}: aimed {kill.aimed}, landed {kill.landed}")
    assert outcome.problems == []
    landed = [k for k in outcome.kills if not k.landed.startswith("missed")]
    assert {k.playbook for k in landed} == {name for name, points in plan.items() if points}  # each was killed
    assert allow_missed or len(landed) == len(outcome.kills)
    assert (outcome.lost, outcome.duplicated) == (0, 0)
    assert outcome.messages > 0 and outcome.slack_calls > 0 and outcome.pager_calls > 0


def test_serve_killed_inside_the_last_step_of_every_playbook_on_sqlite(
        tmp_path: Path, world: World, slack: FakeSlack, pager: FakePagerDuty) -> None:
    plan = {name: [FAST_SQLITE.get(name, KillPoint(steps - 1, inside=True))] for name, steps in STEPS.items()}
    outcome = run_chain(f"sqlite:///{tmp_path / 'bot.db'}", tmp_path, world, plan, slack, pager)
    check(outcome, plan)


def test_serve_killed_after_the_first_step_of_every_playbook_on_postgres(
        tmp_path: Path, postgres_url: str, world: World, slack: FakeSlack, pager: FakePagerDuty) -> None:
    plan = {name: [FAST_POSTGRES.get(name, KillPoint(0, inside=False))] for name in STEPS}
    outcome = run_chain(postgres_url, tmp_path, world, plan, slack, pager)
    check(outcome, plan)


def full_matrix(group: str) -> dict[str, list[KillPoint]]:
    """Inside and after every step, in order, each run killed at every point of its playbook in turn.

    ``group``: ``restore-etcd`` (after an unkilled snapshot-etcd that takes its snapshot) or the
    other playbooks, so that either can be run alone (``-k restore``).

    restart-component is killed only inside ``wait-leader``: inside ``restart`` (no check, not
    repeatable) the run is handed back by design; its checkpoint 1 is followed within milliseconds
    by ``wait-leader`` once the new leader holds the Lease (the PostgreSQL fast test kills there,
    before it does); and its verify takes milliseconds too, too short to be seen from outside.
    """
    matrix = {name: [KillPoint(i, inside) for i in range(steps) for inside in (True, False)]
              for name, steps in STEPS.items()}
    matrix["restart-component"] = [KillPoint(1, inside=True)]
    if group == "restore-etcd":
        return {"snapshot-etcd": [], "restore-etcd": matrix["restore-etcd"]}
    return {name: points for name, points in matrix.items() if name != "restore-etcd"}


@pytest.mark.long
@pytest.mark.parametrize("group", ["other-playbooks", "restore-etcd"])
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_serve_killed_at_every_step_boundary_and_inside_every_step(
        database: str, group: str, tmp_path: Path, request: pytest.FixtureRequest, world: World, slack: FakeSlack,
        pager: FakePagerDuty) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}" if database == "sqlite" else request.getfixturevalue("postgres_url")
    plan = full_matrix(group)
    outcome = run_chain(url, tmp_path, world, plan, slack, pager)
    check(outcome, plan, allow_missed=True)
