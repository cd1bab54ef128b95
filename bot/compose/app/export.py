"""The export capability: `/incident export` in chat and GET /api/incidents/{ref}/export over HTTP.

Listed in ``EXTENSIONS`` (bot/compose/app/bot.py); the CLI subcommand lives in
bot/compose/cli/commands_export.py.  The rendering itself is the domain's
(bot/domain/export); this module only wires transports to it.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.chat import handlers_export
from bot.domain.export import check_format, export_incident
from bot.chat.plugin import ChatHost


def export_route(bot: Any) -> Route:
    async def endpoint(request: Request) -> Response:
        from bot.compose.app.http import error_response  # http imports bot.compose.app.bot; import late to keep load order free

        try:
            fmt = check_format(request.query_params.get("format", "md"))
            result = await run_in_threadpool(
                export_incident, bot.db, bot.settings, request.path_params["ref"], fmt=fmt,
                tz=request.query_params.get("tz"),
            )
        except Exception as exc:
            return error_response(exc)
        return Response(result.content, media_type=result.media_type,
                        headers={"Content-Disposition": f'inline; filename="{result.filename}"'})

    return Route("/api/incidents/{ref}/export", endpoint, methods=["GET"])


def register(bot: ChatHost) -> None:
    handlers_export.register(bot.dispatcher)
    bot.routes.append(export_route(bot))
