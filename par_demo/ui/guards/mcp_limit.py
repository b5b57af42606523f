"""The size of an MCP request: large enough for the biggest picture a tool takes (MAX_UPLOAD_BYTES
as base64 in a data: URL, with room for the JSON around it), and an oversize tool call answered
as a tool error naming the argument that is too large, not an HTTP 413 (which ends a client's
whole session). The MCP library's own transport limit (4 MiB) is raised to the same figure."""
from __future__ import annotations

import json
import re

import gradio as gr
from starlette.responses import JSONResponse, PlainTextResponse

from par_demo.ui.inputs import MAX_UPLOAD_BYTES

MB = 1 << 20
MCP_BODY_LIMIT = 16 * MB  # a 10 MB picture is 13.4 MB as base64
READ_LIMIT = 8 * MCP_BODY_LIMIT  # read (and drop) this much of an oversize call to answer it
MCP_PATH = "/gradio_api/mcp"
HEAD_BYTES, TAIL_BYTES = 64 * 1024, 4 * 1024  # what is kept of an oversize body: id, tool, field
REQUEST_ID = re.compile(rb'"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,20})')
OPEN_STRING = re.compile(rb'"([A-Za-z_]\w{0,60})"\s*:\s*"(?:[^"\\]|\\.)*$')  # a value cut off


def raise_transport_limit(demo: gr.Blocks) -> None:
    """The streamable-HTTP transport's own body limit, after launch created it."""
    manager = demo.mcp_server_obj.manager
    manager.max_request_body_size = MCP_BODY_LIMIT
    manager.asgi_app.max_body_size = MCP_BODY_LIMIT


def oversize_message(field: str, size: int) -> str:
    return (f"{field}: the call is {size / MB:.1f} MB, over the {MCP_BODY_LIMIT // MB} MB an MCP "
            f"call may carry; a picture may be at most {MAX_UPLOAD_BYTES // MB} MB (about "
            f"{MAX_UPLOAD_BYTES * 4 / 3 / MB:.1f} MB as base64)")


def tool_error(head: bytes, tail: bytes, size: int) -> dict | None:
    """The JSON-RPC answer to an oversize tools/call, or None when it is none."""
    if b'"tools/call"' not in head:
        return None
    found = REQUEST_ID.search(head) or REQUEST_ID.search(tail)
    if found is None:
        return None
    field = OPEN_STRING.search(head)
    text = oversize_message(field.group(1).decode() if field else "arguments", size)
    return {"jsonrpc": "2.0", "id": json.loads(found.group(1)),
            "result": {"content": [{"type": "text", "text": text}], "isError": True}}


class McpSizeGuard:
    """ASGI middleware: MCP posts over MCP_BODY_LIMIT get a tool error; others pass."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or not scope["path"].rstrip("/").endswith(MCP_PATH)):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) <= MCP_BODY_LIMIT:
            return await self.app(scope, receive, send)
        head, tail, size, kept = b"", b"", 0, []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                kept.append(message)
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MCP_BODY_LIMIT:
                kept.append(message)
            if len(head) < HEAD_BYTES:
                head += chunk[:HEAD_BYTES - len(head)]
            tail = (tail + chunk)[-TAIL_BYTES:]
            if not message.get("more_body", False) or size > READ_LIMIT:
                break
        if size <= MCP_BODY_LIMIT:  # a body of no declared length, within the limit
            replay = iter(kept)
            return await self.app(scope, lambda: _next(replay, receive), send)
        answer = tool_error(head, tail, size)
        response = (JSONResponse(answer) if answer and size <= READ_LIMIT else
                    PlainTextResponse(f"Request body too large: at most {MCP_BODY_LIMIT // MB} "
                                      "MB", status_code=413))
        await response(scope, receive, send)


async def _next(replay, receive):
    for message in replay:
        return message
    return await receive()
