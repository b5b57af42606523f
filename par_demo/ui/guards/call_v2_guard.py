"""Gradio's keyword API (POST /gradio_api/call/v2/<endpoint>, arguments by name) answered with a
reason where Gradio would fail with a traceback and "Internal Server Error": an endpoint it does
not list (the MCP tools are the tools' app's, not the page's), a body that is no JSON object, an
argument the endpoint does not take, or a required one left out. Calls that pass go on to Gradio
unchanged."""
from __future__ import annotations

import json

import gradio as gr
from starlette.responses import JSONResponse

from par_demo.ui.guards.asgi_body import read_body, replaying
from par_demo.ui.guards.mcp_limit import MCP_BODY_LIMIT

V2_PREFIX = "/gradio_api/call/v2/"
LARGEST_BODY = MCP_BODY_LIMIT  # a tool's picture as base64, as over MCP


def _refused(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"detail": reason}, status_code=status)


class CallV2Guard:
    """ASGI middleware: POST {V2_PREFIX}<endpoint> checked as above; others pass."""

    def __init__(self, app, blocks: gr.Blocks) -> None:
        self.app, self.blocks = app, blocks
        self._endpoints: dict | None = None

    def endpoints(self) -> dict:
        if self._endpoints is None:  # the app's endpoints are fixed once it is built
            self._endpoints = self.blocks.get_api_info()["named_endpoints"]
        return self._endpoints

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if V2_PREFIX not in path or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        name = "/" + path.split(V2_PREFIX, 1)[1].strip("/")
        body, complete = await read_body(receive, LARGEST_BODY)
        refusal = self._refusal(name, body, not complete or len(body) > LARGEST_BODY)
        if refusal is not None:
            return await refusal(scope, receive, send)
        await self.app(scope, replaying(body, receive), send)

    def _refusal(self, name: str, body: bytes, too_large: bool) -> JSONResponse | None:
        info = self.endpoints().get(name)
        if info is None:
            return _refused(404, f"{name} is no endpoint of the keyword API (/call/v2): it "
                                 f"serves {', '.join(self.endpoints())}")
        if too_large:
            return _refused(413, f"the call is larger than {LARGEST_BODY >> 20} MB")
        try:
            arguments = json.loads(body)
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            return _refused(422, f"{name} takes a JSON object of its arguments by name")
        params = info["parameters"]
        known = {p["parameter_name"] for p in params} | {"oauth_token"}
        unknown = [k for k in arguments if k not in known]
        missing = [p["parameter_name"] for p in params
                   if not p["parameter_has_default"] and p["parameter_name"] not in arguments]
        if unknown or missing:
            wrong = (f"takes no argument {unknown[0]!r:.60}" if unknown
                     else f"needs {', '.join(missing)}")
            return _refused(422, f"{name} {wrong}; its arguments: "
                                 f"{', '.join(p['parameter_name'] for p in params)}")
        return None
