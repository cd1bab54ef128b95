"""Issue trackers that action items are mirrored to: GitHub Issues and Jira.

Each client knows only its tracker's REST API (no incidents, no chat): create
an issue, and tell whether it is closed.  ``Tracker`` is the interface the
domain uses; ``FakeTracker`` sits beside it for unit tests, while the real
clients are tested against loopback servers speaking the documented API.
Credentials are passed in and never appear in an error message or a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class TrackerError(Exception):
    """The tracker refused or could not be reached; the message is safe to show (no credentials)."""


@dataclass(frozen=True)
class Ticket:
    key: str  # "42" on GitHub, "OPS-7" on Jira
    url: str  # where a person opens it


class Tracker(Protocol):
    name: str

    def create(self, title: str, body: str, labels: list[str]) -> Ticket: ...

    def is_closed(self, key: str) -> bool: ...


@dataclass
class FakeTracker:
    """An in-memory tracker: issues are numbered from 1; tests close them with ``close``."""

    name: str = "fake"
    issues: dict[str, dict[str, object]] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    fail: bool = False

    def create(self, title: str, body: str, labels: list[str]) -> Ticket:
        if self.fail:
            raise TrackerError("fake tracker refused")
        key = str(len(self.issues) + 1)
        self.issues[key] = {"title": title, "body": body, "labels": list(labels)}
        return Ticket(key, f"https://tracker.invalid/{key}")

    def is_closed(self, key: str) -> bool:
        if self.fail:
            raise TrackerError("fake tracker refused")
        return key in self.closed

    def close(self, key: str) -> None:
        self.closed.add(key)


__all__ = ["FakeTracker", "Ticket", "Tracker", "TrackerError", "github", "jira"]
