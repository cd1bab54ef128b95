"""Is a restored etcd consistent? Members of a live cluster answer hashkv a write or two apart.

The client here is a scripted ``etcdctl endpoint hashkv``: each member's hash at its latest
revision, and the hash at a given revision (what ``--rev`` answers). The real command runs
in ``tests/integration/test_etcd_client.py`` and in the restore drills.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from integrations.clients.etcd import HashKV
from playbooks.library import etcd_ops


@dataclass
class ScriptedHashkv:
    """Members at ``latest`` revisions; the key space's hash at revision r is ``history[r]`` unless a member diverged."""

    latest: dict[str, int]
    history: dict[int, int]
    diverged: dict[str, int] = field(default_factory=dict)  # member -> its own (wrong) hash at any revision
    asked: list[int] = field(default_factory=list)

    def hashkv(self, endpoints: object = None, *, revision: int = 0) -> dict[str, HashKV]:
        self.asked.append(revision)
        return {ep: HashKV(endpoint=ep, hash=self.diverged.get(ep, self.history[revision or rev]),
                           revision=rev, compact_revision=-1, member_id=i)
                for i, (ep, rev) in enumerate(self.latest.items())}


def test_members_a_write_apart_are_compared_at_the_revision_all_have_reached() -> None:
    # the apiserver renewed a lease between the members' answers: 1001 on two, 1002 on the third
    client = ScriptedHashkv(latest={"a": 1001, "b": 1001, "c": 1002}, history={1001: 111, 1002: 222})
    hashes = etcd_ops.hashes_at_one_revision(client)  # type: ignore[arg-type]
    assert {h.hash for h in hashes.values()} == {111}
    assert client.asked == [0, 1001]


def test_a_member_that_really_differs_still_differs_at_the_common_revision() -> None:
    client = ScriptedHashkv(latest={"a": 1001, "b": 1002, "c": 1002}, history={1001: 111, 1002: 222},
                            diverged={"c": 999})
    hashes = etcd_ops.hashes_at_one_revision(client)  # type: ignore[arg-type]
    assert {ep: h.hash for ep, h in hashes.items()} == {"a": 111, "b": 111, "c": 999}


def test_members_that_agree_at_once_are_asked_once() -> None:
    client = ScriptedHashkv(latest={"a": 7, "b": 7, "c": 7}, history={7: 70})
    assert {h.hash for h in etcd_ops.hashes_at_one_revision(client).values()} == {70}  # type: ignore[arg-type]
    assert client.asked == [0]
