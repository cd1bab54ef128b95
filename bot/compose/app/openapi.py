"""``GET /openapi.json``: the HTTP contract of ``serve``, declared once as a table.

Each row of ``OPERATIONS`` is one endpoint of design.md (plus those that
capabilities added since): its method, path, parameters, body and answers.
The document is built from the rows, served as OpenAPI 3.1, checked against
the routes the app really serves (``tests/core/test_openapi.py``), and read
by the schema-driven fuzz tests, which send every endpoint inputs generated
from it.  Bodies that belong to another party's wire format (Slack's signed
forms, Alertmanager's webhook) are described as far as the bot relies on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.core.plugins import Host

PATH = "/openapi.json"

ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
INCIDENT_REF = {"name": "ref", "in": "path", "required": True, "description": "INC-<number> or the number",
                "schema": {"type": "string", "pattern": "^(INC-)?[0-9]+$"}}
CLOCK = {"type": "object", "properties": {
    "stage": {"type": "string"}, "verdict": {"type": "string"}, "budget_seconds": {"type": "number"},
    "elapsed_seconds": {"type": "number"}, "deadline": {"type": "string", "format": "date-time"}}}
INCIDENT = {"type": "object", "required": ["id", "title", "state", "severity"], "properties": {
    "id": {"type": "string", "pattern": "^INC-[0-9]+$"}, "title": {"type": "string"},
    "state": {"type": "string"}, "severity": {"type": "string"}, "cluster": {"type": ["string", "null"]},
    "component": {"type": ["string", "null"]}, "root_cause": {"type": ["string", "null"]},
    **{f"{stage}_at": {"type": ["string", "null"], "format": "date-time"}
       for stage in ("started", "detected", "notified", "diagnosed", "mitigated", "resolved")},
    "clocks": {"type": "array", "items": CLOCK}}}
ALERT = {"type": "object", "required": ["labels", "startsAt"], "properties": {
    "status": {"type": "string", "enum": ["firing", "resolved"]},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    "startsAt": {"type": "string", "format": "date-time"}, "endsAt": {"type": "string"},
    "generatorURL": {"type": "string"}, "fingerprint": {"type": "string"}}}
ALERTMANAGER_V4 = {"type": "object", "required": ["version", "status", "alerts"], "properties": {
    "version": {"type": "string", "const": "4"}, "groupKey": {"type": "string"},
    "status": {"type": "string", "enum": ["firing", "resolved"]}, "receiver": {"type": "string"},
    "groupLabels": {"type": "object"}, "commonLabels": {"type": "object"}, "commonAnnotations": {"type": "object"},
    "externalURL": {"type": "string"}, "truncatedAlerts": {"type": "integer", "minimum": 0},
    "alerts": {"type": "array", "items": ALERT}}}


@dataclass(frozen=True)
class Operation:
    """One endpoint: what it takes and what it answers (status -> description, optional JSON schema)."""

    method: str
    path: str
    summary: str
    responses: dict[int, tuple[str, dict[str, Any] | None]]
    params: tuple[dict[str, Any], ...] = ()
    body: dict[str, Any] | None = None  # media type -> schema
    security: tuple[str, ...] = ()  # names of SECURITY schemes, any one suffices
    tags: tuple[str, ...] = field(default=())


SECURITY = {
    "api_token": {"type": "http", "scheme": "bearer",
                  "description": "api_token (INCIDENT_BOT_API_TOKEN); required for /api/* when configured"},
    "webhook_token": {"type": "http", "scheme": "bearer", "description": "INCIDENT_BOT_WEBHOOK_TOKEN"},
    "slack_signature": {"type": "apiKey", "in": "header", "name": "X-Slack-Signature",
                        "description": "Slack's v0 HMAC-SHA256 of v0:<X-Slack-Request-Timestamp>:<body>"},
    "pagerduty_signature": {"type": "apiKey", "in": "header", "name": "X-PagerDuty-Signature",
                            "description": "PagerDuty webhook v3 signature"},
    "opsgenie_token": {"type": "http", "scheme": "bearer", "description": "paging.opsgenie.webhook_token"},
}
BAD = (400, ("bad input: the message names the field", ERROR))
UNAUTHORIZED = (401, ("missing or wrong credentials", ERROR))
NOT_FOUND = (404, ("no such incident", ERROR))
UNAVAILABLE = (503, ("the database is unavailable; retry", ERROR))
TEXT = {"text/plain": {"type": "string"}}

OPERATIONS: tuple[Operation, ...] = (
    Operation("get", "/healthz", "the process is up", {200: ("ok", None)}),
    Operation("get", "/readyz", "the database answers", {200: ("ok", None), 503: ("the database is away", None)}),
    Operation("get", "/metrics", "Prometheus text format", {200: ("metrics", None)}),
    Operation("get", "/openapi.json", "this document", {200: ("OpenAPI 3.1", {"type": "object"})}),
    Operation("get", "/api/incidents", "incidents (free text redacted as in the export)",
              {200: ("the incidents", {"type": "object", "required": ["incidents"],
                                       "properties": {"incidents": {"type": "array", "items": INCIDENT}}}),
               401: UNAUTHORIZED[1], 503: UNAVAILABLE[1]},
              params=({"name": "all", "in": "query", "required": False, "description": "1: include finished ones",
                       "schema": {"type": "string"}},), security=("api_token",)),
    Operation("get", "/api/incidents/{ref}", "one incident", {200: ("the incident", INCIDENT), 400: BAD[1],
                                                                401: UNAUTHORIZED[1], 404: NOT_FOUND[1]},
              params=(INCIDENT_REF,), security=("api_token",)),
    Operation("get", "/api/incidents/{ref}/export", "the post-mortem (redacted)",
              {200: ("the document in the asked format", None), 400: BAD[1], 401: UNAUTHORIZED[1],
               404: NOT_FOUND[1]},
              params=(INCIDENT_REF,
                      {"name": "format", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": ["md", "json", "html"]}},
                      {"name": "tz", "in": "query", "required": False, "description": "an IANA zone",
                       "schema": {"type": "string"}}), security=("api_token",)),
    Operation("get", "/api/report", "incidents and their clocks over a period",
              {200: ("the report", None), 400: BAD[1], 401: UNAUTHORIZED[1]},
              params=({"name": "since", "in": "query", "required": False, "schema": {"type": "string"}},
                      {"name": "cluster", "in": "query", "required": False, "schema": {"type": "string"}},
                      {"name": "format", "in": "query", "required": False, "schema": {"type": "string"}}),
              security=("api_token",)),
    Operation("post", "/webhooks/alertmanager", "Alertmanager webhook v4",
              {200: ("what the delivery changed", {"type": "object"}), 400: BAD[1], 401: UNAUTHORIZED[1],
               413: ("too large", ERROR), 503: UNAVAILABLE[1]},
              body={"application/json": ALERTMANAGER_V4}, security=("webhook_token",)),
    Operation("post", "/webhooks/pagerduty", "PagerDuty webhook v3 (acknowledgements)",
              {200: ("accepted", None), 400: BAD[1], 401: UNAUTHORIZED[1], 503: UNAVAILABLE[1]},
              body={"application/json": {"type": "object"}}, security=("pagerduty_signature",)),
    Operation("post", "/webhooks/opsgenie", "Opsgenie webhook (acknowledgements)",
              {200: ("accepted", None), 400: BAD[1], 401: UNAUTHORIZED[1], 503: UNAVAILABLE[1]},
              body={"application/json": {"type": "object"}}, security=("opsgenie_token",)),
    Operation("post", "/slack/events", "Slack: slash commands, interactivity and events (one Request URL)",
              {200: ("acknowledged (a replayed request: acknowledged, not run)", None), 400: BAD[1],
               401: UNAUTHORIZED[1], 413: ("larger than 1 MiB", ERROR), 503: UNAVAILABLE[1]},
              params=({"name": "X-Slack-Request-Timestamp", "in": "header", "required": True,
                       "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"}},),
              body={"application/x-www-form-urlencoded": {"type": "object", "properties": {
                  "command": {"type": "string"}, "text": {"type": "string"}, "payload": {"type": "string"},
                  "user_id": {"type": "string"}, "channel_id": {"type": "string"},
                  "response_url": {"type": "string"}}},
                  "application/json": {"type": "object", "properties": {"type": {"type": "string"}}}},
              security=("slack_signature",)),
)


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``OPERATIONS``."""
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        entry: dict[str, Any] = {
            "operationId": f"{op.method}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
                           .replace(".", "_").replace("-", "_"),
            "summary": op.summary,
            "responses": {str(code): {"description": text,
                                      **({"content": {"application/json": {"schema": schema}}} if schema else {})}
                          for code, (text, schema) in op.responses.items()},
        }
        if op.params:
            entry["parameters"] = [dict(p) for p in op.params]
        if op.body:
            entry["requestBody"] = {"required": True,
                                    "content": {media: {"schema": schema} for media, schema in op.body.items()}}
        if op.security:
            entry["security"] = [{name: []} for name in op.security]
        paths.setdefault(op.path, {})[op.method] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "incident-bot", "version": "1",
                 "description": "The HTTP side of `incident-bot serve` (docs/http-api.md)."},
        "paths": paths,
        "components": {"securitySchemes": SECURITY},
    }


def register(bot: Host) -> None:
    body = document()

    async def openapi(request: Request) -> Response:
        return JSONResponse(body)

    bot.routes.append(Route(PATH, openapi, methods=["GET"]))
