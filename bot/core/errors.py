"""The one error hierarchy of incident-bot.

Every failure a person can cause or meet is an ``IncidentBotError``.  Its
message is a plain sentence that is shown as it is: in chat, on the CLI, in
an HTTP 4xx body.  Anything that is *not* an ``IncidentBotError`` is a bug; the
edges (chat dispatcher, CLI, HTTP) log it with its traceback and answer with a
short apology, never with the traceback itself.

    IncidentBotError
    ├── UserError                 the request cannot be done as asked (4xx)
    │   ├── BadInput              a field is missing or malformed
    │   ├── NotFound              an incident, run or playbook that does not exist
    │   ├── IllegalTransition     the lifecycle forbids the move from this state
    │   ├── PermissionDenied      the caller may not do this
    │   ├── Conflict              someone else holds the lease / a duplicate
    │   └── NotAvailableYet       a verb that this build does not implement
    ├── ConfigError               bad configuration, found at start
    ├── IntegrationError          an outside system failed (Prometheus down, etcd timeout)
    │   └── IntegrationTimeout
    └── StepFailed                a playbook step could not do its work
"""

from __future__ import annotations


class IncidentBotError(Exception):
    """Base of every error that carries a message meant for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UserError(IncidentBotError):
    """The request was understood but cannot be carried out as asked."""

    http_status = 400


class BadInput(UserError):
    """A field is missing or malformed; the message names the field."""

    def __init__(self, message: str, *, field: str | None = None, usage: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.usage = usage


class NotFound(UserError):
    http_status = 404


class IllegalTransition(UserError):
    """The lifecycle table has no such move from the current state."""

    http_status = 409


class PermissionDenied(UserError):
    http_status = 403


class Conflict(UserError):
    http_status = 409


class NotAvailableYet(UserError):
    """A verb of the grammar that this build does not implement yet."""

    http_status = 501


class ConfigError(IncidentBotError):
    """Bad configuration: the message names the setting and what was expected."""


class IntegrationError(IncidentBotError):
    """An outside system (Prometheus, etcd, HAProxy, the apiserver, Slack) failed."""

    elapsed: float | None = None  # how long the failed call took, when the caller timed it


class IntegrationTimeout(IntegrationError):
    """An outside system did not answer in time."""


class StepFailed(IncidentBotError):
    """A playbook step could not complete; the engine rolls back."""
