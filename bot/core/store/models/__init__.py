"""The persistent schema: everything the bot knows lives in these tables.

The bot's own state never depends on the cluster it repairs, so every fact
(stage timestamps, who approved what, which step of a run is done, which chat
message is still to be sent) is a row here.  Tables are plain sqlmodel rows;
behaviour lives in the domain modules that read and write them.

Times are stored as timezone-aware UTC.  Free-form evidence and parameters go
into JSON columns so that later capabilities add behaviour, not tables.

Ids and NOT NULL timestamps are typed as always present (``id: int``, ``at: datetime``),
though they default to None: a row is None there only between its construction and the
first flush, and every row the bot reads from the store or hands on has them.  Typing them
``Optional`` would ask every reader to prove what the database already guarantees.

The tables are defined in modules by group (``incidents``, ``runs``, ``delivery``,
``observations``, ``guard``; column types in ``columns``). This package is the schema's public
surface: importing it registers every table on ``ALL_TABLES`` (what the migrations and
``Database.create_all`` need), and callers import any table from here.
"""

from sqlmodel import SQLModel

from bot.core.store.models.columns import UTCDateTime, table_of
from bot.core.store.models.delivery import ChatBinding, OutboxMessage, ProcessedDelivery, RateLimit
from bot.core.store.models.guard import GuardBreaker, GuardDeleteCount, GuardException
from bot.core.store.models.incidents import (
    ActionItem,
    Alert,
    Incident,
    IncidentAlertCount,
    IncidentCluster,
    IncidentLink,
    Participant,
    TimelineEvent,
)
from bot.core.store.models.observations import ClusterChange, EvidenceSection, ProbeResult, ProbeTally
from bot.core.store.models.runs import Approval, Flag, Lease, PlaybookRun, RunStep, Snapshot

ALL_TABLES = SQLModel.metadata

__all__ = [
    "ALL_TABLES", "ActionItem", "Alert", "Approval", "ChatBinding", "ClusterChange", "EvidenceSection", "Flag",
    "GuardBreaker", "GuardDeleteCount", "GuardException", "Incident", "IncidentAlertCount", "IncidentCluster",
    "IncidentLink", "Lease", "OutboxMessage", "Participant", "PlaybookRun", "ProbeResult", "ProbeTally",
    "ProcessedDelivery", "RateLimit", "RunStep", "Snapshot", "TimelineEvent", "UTCDateTime", "table_of",
]
