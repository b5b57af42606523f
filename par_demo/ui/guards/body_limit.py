"""The size of a call's JSON body: Gradio reads any body whole into memory (a 100 MB one grew the
server by over 300 MB). The largest a call needs is one picture as base64 for a tool
(edit_image, dependency_map), the MCP server's own calls into the queue included; the page's
calls carry a few kilobytes (its pictures travel as uploads, named by path). An ASGI layer
answers a larger body with HTTP 413 before Gradio reads it; the routes that carry files have
bounds of their own (upload_guard.py, editor_blobs.py, mcp_limit.py, and the keyword API's,
call_v2_guard.py)."""
from __future__ import annotations

from starlette.responses import PlainTextResponse

from par_demo.ui.guards.asgi_body import drain, read_body, replaying
from par_demo.ui.guards.mcp_limit import MCP_BODY_LIMIT

API_PREFIX = "/gradio_api/"
API_BODY_LIMIT = MCP_BODY_LIMIT  # a 10 MB picture as base64, and the JSON around it
DRAINED = 2 * API_BODY_LIMIT  # a larger body is read (and dropped) before the answer, a still
# larger one is not
OWN_BOUNDS = ("/gradio_api/upload", "/gradio_api/component_server", "/gradio_api/mcp",
              "/gradio_api/call/v2/")


def _too_large() -> PlainTextResponse:
    return PlainTextResponse(f"A call's body may be at most {API_BODY_LIMIT} bytes: one picture "
                             "as base64 for a tool; the page's pictures are uploaded (POST "
                             "/gradio_api/upload) and named by path.", status_code=413)


class ApiBodyLimit:
    """ASGI middleware: POSTs under API_PREFIX, but OWN_BOUNDS, take at most API_BODY_LIMIT."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if (scope.get("method") != "POST" or API_PREFIX not in path
                or any(bound in path for bound in OWN_BOUNDS)):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit():
            if int(length) > API_BODY_LIMIT:
                if int(length) <= DRAINED:
                    await drain(receive)
                return await _too_large()(scope, receive, send)
            return await self.app(scope, receive, send)
        body, complete = await read_body(receive, API_BODY_LIMIT)  # no declared length
        if not complete or len(body) > API_BODY_LIMIT:
            return await _too_large()(scope, receive, send)
        await self.app(scope, replaying(body, receive), send)
