"""Gradio's other way in for files: POST /gradio_api/component_server, where the ImageEditor's
`accept_blobs` keeps a painted picture's parts in memory by an id of the page's choosing. It
took any layer index (a list of that many slots: one request of index 10**9 would take 8 GB),
files up to 1000 per request, and it keeps every id until an edit reads it back, which this app
(preprocess=False) never does. Here only the ImageEditor's accept_blobs is served, with one
part of a picture per call (a known kind, a layer index below MAX_LAYER), charged to the
client's upload budget, and each editor keeps the parts of its KEPT_PICTURES latest ids."""
from __future__ import annotations

import gradio as gr
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from par_demo.ui.guards.asgi_body import drain, read_body, replaying
from par_demo.ui.guards.upload_guard import UploadBudget, declared_length
from par_demo.ui.inputs import MAX_UPLOAD_BYTES

COMPONENT_SERVER = "/gradio_api/component_server"
SERVED_FN = "accept_blobs"
PARTS = ("background", "layer", "composite")
MAX_LAYER = 8  # the Edit tab's editor paints one layer
LARGEST_CALL = MAX_UPLOAD_BYTES + 64 * 1024  # one part and the form around it
DRAINED = 4 * LARGEST_CALL  # a refused call up to this size is read first, so the client hears
KEPT_PICTURES = 64
MAX_ID = 64  # characters of an id (the page makes about 11)


def _refused(status: int, reason: str) -> PlainTextResponse:
    return PlainTextResponse(reason, status_code=status)


class EditorBlobGuard:
    """ASGI middleware for POST {COMPONENT_SERVER}, as above; other requests pass."""

    def __init__(self, app, blocks: gr.Blocks, budget: UploadBudget) -> None:
        self.app, self.blocks, self.budget = app, blocks, budget

    def editors(self) -> dict[int, gr.ImageEditor]:
        return {i: b for i, b in self.blocks.blocks.items() if isinstance(b, gr.ImageEditor)}

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope.get("method") != "POST" or not path.rstrip("/").endswith(COMPONENT_SERVER):
            return await self.app(scope, receive, send)
        length, refusal = declared_length(scope, LARGEST_CALL)
        if refusal is None:
            refusal = self.budget.charge(scope, length)
        if refusal is not None:
            if length <= DRAINED:
                await drain(receive)
            return await refusal(scope, receive, send)
        body, _ = await read_body(receive, LARGEST_CALL)
        refusal = await self._check(scope, body)
        if refusal is not None:
            return await refusal(scope, receive, send)
        await self.app(scope, replaying(body, receive), send)
        for editor in self.editors().values():
            while len(editor.blob_storage) > KEPT_PICTURES:  # the oldest id goes first
                editor.blob_storage.pop(next(iter(editor.blob_storage)))

    async def _check(self, scope, body: bytes) -> PlainTextResponse | None:
        if not scope_is_multipart(scope):
            return _refused(404, f"the app serves no JSON call at {COMPONENT_SERVER}")
        async def nothing_more():
            return {"type": "http.disconnect"}
        try:
            async with Request(scope, replaying(body, nothing_more)).form(
                    max_files=1, max_fields=8) as form:
                fields = {k: v for k, v in form.items() if isinstance(v, str)}
                files = len(form) - len(fields)
        except Exception:  # noqa: BLE001 - any form Starlette cannot read is refused
            return _refused(400, "the call is no form of one picture part")
        component, fn = fields.get("component_id", ""), fields.get("fn_name")
        if fn != SERVED_FN or not component.isdigit() or int(component) not in self.editors():
            return _refused(404, f"the app serves only its picture editor's {SERVED_FN} here")
        index, part, picture_id = (fields.get("index", "null"), fields.get("type"),
                                   fields.get("id", ""))
        if part not in PARTS:
            return _refused(422, f"type must be one of: {', '.join(PARTS)}")
        if index not in ("", "null") and not (index.isdigit() and int(index) < MAX_LAYER):
            return _refused(422, f"index must be a layer 0..{MAX_LAYER - 1} or null")
        if not picture_id or len(picture_id) > MAX_ID or files != 1:
            return _refused(422, f"a call takes one file and an id of at most {MAX_ID} "
                                 "characters")
        return None


def scope_is_multipart(scope) -> bool:
    return dict(scope["headers"]).get(b"content-type", b"").startswith(b"multipart/form-data")
