"""Stop through Gradio's two-step API (POST /gradio_api/call/stop, then GET its event's stream),
answered like POST /gradio_api/run/stop. Gradio streams a /call event's answer from the
session's one message queue: with the caller's session hash (how Stop finds the caller's
runs), that stream would take the stopped run's own messages from its client, never close, and
cancel the run's result when it is dropped. Here the POST runs /run/stop and keeps its answer,
and the GET streams that answer alone and closes."""
from __future__ import annotations

import json
import secrets
from collections import OrderedDict

from starlette.responses import JSONResponse, Response

from par_demo.ui.guards.asgi_body import HeldResponse

CALL = "/gradio_api/call/stop"
RUN = "/gradio_api/run/stop"
KEPT_ANSWERS = 1000  # answers not yet fetched; the oldest are dropped


def sse(event: str, data) -> Response:
    return Response(f"event: {event}\ndata: {json.dumps(data)}\n\n",
                    media_type="text/event-stream")


class StopRoute:
    """ASGI middleware: POST {CALL} and GET {CALL}/<event id>, as above; others pass."""

    def __init__(self, app) -> None:
        self.app = app
        self.answers: OrderedDict[str, tuple[str, object]] = OrderedDict()

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "").rstrip("/") if scope["type"] == "http" else ""
        if path.endswith(CALL) and scope["method"] == "POST":
            return await self._stop(scope, receive, send)
        head, _, event_id = path.rpartition("/")
        if head.endswith(CALL) and scope["method"] == "GET":
            kind, data = self.answers.pop(event_id, ("error", "No such stop event: its answer "
                                                               "was fetched already or never was"))
            return await sse(kind, data)(scope, receive, send)
        await self.app(scope, receive, send)

    async def _stop(self, scope, receive, send) -> None:
        run_path = scope["path"].rstrip("/")[:-len(CALL)] + RUN
        held = HeldResponse()
        await self.app(scope | {"path": run_path, "raw_path": run_path.encode()}, receive, held)
        start, body = held.start, held.body
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        answer = answer if isinstance(answer, dict) else {}
        if start is not None and start["status"] == 200:
            kept = ("complete", answer.get("data"))
        else:
            kept = ("error", answer.get("error"))
        event_id = secrets.token_hex(16)
        self.answers[event_id] = kept
        while len(self.answers) > KEPT_ANSWERS:
            self.answers.popitem(last=False)
        await JSONResponse({"event_id": event_id})(scope, receive, send)
