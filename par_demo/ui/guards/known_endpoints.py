"""Calls to an endpoint the app does not have, answered with HTTP 404 and the endpoints it has:
Gradio looks a call's endpoint up by name (/run, /api, /call) or by the body's fn_index (the
queue, and any route given one) and fails with a traceback and "Internal Server Error" when
there is none. The keyword API (/call/v2) is checked by call_v2_guard.py."""
from __future__ import annotations

import json
import re

import gradio as gr
from starlette.responses import JSONResponse

from par_demo.ui.guards.asgi_body import read_body, replaying
from par_demo.ui.guards.body_limit import API_BODY_LIMIT

NAMED_ROUTE = re.compile(r"/gradio_api/(?:run|api|call)/([^/]+)/?$")
QUEUE_JOIN = re.compile(r"/gradio_api/queue/join/?$")


class KnownEndpoints:
    """ASGI middleware: calls by name or by fn_index reach Gradio only for endpoints it has."""

    def __init__(self, app, blocks: gr.Blocks) -> None:
        self.app, self.blocks = app, blocks

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        named = NAMED_ROUTE.search(path)
        if scope.get("method") != "POST" or not (named or QUEUE_JOIN.search(path)):
            return await self.app(scope, receive, send)
        body, _ = await read_body(receive, API_BODY_LIMIT)  # ApiBodyLimit bounds it first
        try:
            call = json.loads(body)
        except ValueError:
            call = None  # Gradio's own validation answers (422)
        index = call.get("fn_index") if isinstance(call, dict) else None
        if index is not None:
            known = not isinstance(index, bool) and index in self.blocks.fns
            asked = f"fn_index {json.dumps(index)[:40]}"
        elif named:
            known = any(fn.api_name == named.group(1) for fn in self.blocks.fns.values())
            asked = f"/{named.group(1)[:60]}"
        else:
            known, asked = True, ""  # the queue without fn_index: Gradio says it is missing
        if not known:
            return await self._unknown(asked)(scope, receive, send)
        await self.app(scope, replaying(body, receive), send)

    def _unknown(self, asked: str) -> JSONResponse:
        names = [f"/{fn.api_name}" for fn in self.blocks.fns.values()
                 if fn.api_visibility != "private"]
        return JSONResponse({"detail": f"the app has no endpoint {asked}; its endpoints: "
                                       f"{', '.join(names)}"}, status_code=404)
