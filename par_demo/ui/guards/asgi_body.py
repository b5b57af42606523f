"""Reading a request's body in an ASGI layer, handing it on to the app as if unread, and holding
the app's response to look at it before it is sent."""
from __future__ import annotations


async def read_body(receive, limit: int) -> tuple[bytes, bool]:
    """(the body, or its first `limit` bytes and a little more, whether it was all read)."""
    body, more = b"", True
    while more and len(body) <= limit:
        message = await receive()
        body += message.get("body", b"")
        more = message["type"] == "http.request" and message.get("more_body", False)
    return body, not more


async def drain(receive) -> None:
    """Read the rest of a body and drop it: a client still sending misses an answer sent
    before its body is read (the connection closes under it)."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def replaying(body: bytes, receive):
    """A `receive` for the app that gives the body read, then what the client sends next."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return replay


class HeldResponse:
    """A `send` for the app that keeps its response (start and body) instead of sending it."""

    def __init__(self) -> None:
        self.start: dict | None = None
        self.body = b""

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
