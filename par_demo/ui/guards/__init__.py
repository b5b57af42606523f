"""The layers around the app that answer malformed and hostile use before Gradio does, each with
the reason: the shape of a call's inputs (call_shapes, inside Gradio's processing, on every
route) and, in front of Gradio's routes as ASGI middleware, outermost first: the size of a call's
body, the two ways files come in (one budget per client), the MCP request size, Stop through
/call, the endpoints called, the keyword API."""
from __future__ import annotations

import gradio as gr
from starlette.middleware import Middleware

from par_demo.ui.guards.body_limit import ApiBodyLimit
from par_demo.ui.guards.call_shapes import guard_calls
from par_demo.ui.guards.call_v2_guard import CallV2Guard
from par_demo.ui.guards.editor_blobs import EditorBlobGuard
from par_demo.ui.guards.known_endpoints import KnownEndpoints
from par_demo.ui.guards.mcp_limit import McpSizeGuard, raise_transport_limit
from par_demo.ui.guards.stop_route import StopRoute
from par_demo.ui.guards.upload_guard import UploadBudget, UploadGuard

__all__ = ["guard_calls", "http_layers", "raise_transport_limit"]


def http_layers(demo: gr.Blocks) -> list[Middleware]:
    """The middleware for demo.launch(app_kwargs={"middleware": ...})."""
    budget = UploadBudget.from_env()  # files by /upload and by the editor alike
    return [Middleware(ApiBodyLimit), Middleware(UploadGuard, budget=budget),
            Middleware(EditorBlobGuard, blocks=demo, budget=budget), Middleware(McpSizeGuard),
            Middleware(StopRoute), Middleware(KnownEndpoints, blocks=demo),
            Middleware(CallV2Guard, blocks=demo)]
