"""The Kubernetes apiserver stand-in (kmock over real HTTP) for tests.

It lives in ``bot.sandbox.apiserver`` (the sandbox serves it too); this
module re-exports it so tests keep one import path.
"""

from bot.sandbox.apiserver import (  # noqa: F401 - re-exported
    FLOWCONTROL_GROUP,
    SERVER_CONCURRENCY_LIMIT,
    ApiServerStandIn,
    InflightRequest,
    RequestRecord,
    bootstrap_flow_schemas,
    bootstrap_priority_levels,
)
