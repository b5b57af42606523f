"""Bounds on what visitors can store (an ASGI layer in front of Gradio's POST /gradio_api/upload):
each client has a byte budget over a sliding window (counted by `limits`), only pictures are
kept, and the upload folder has a cap beyond which its oldest files are removed. Refusals are
plain HTTP answers with the reason: 411 without a declared length, 413 for a request larger
than the Edit tab ever sends, 429 over the budget (with Retry-After), 415 for a file that is
no picture. Gradio itself refuses a file over max_file_size with 413."""
from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
from gradio import utils as gradio_utils
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from PIL import Image
from starlette.responses import PlainTextResponse

from par_demo.ui.guards.asgi_body import HeldResponse, drain
from par_demo.ui.inputs import MAX_UPLOAD_BYTES

log = logging.getLogger("par_demo.ui")

UPLOAD_PATH = "/gradio_api/upload"
PICTURE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")  # what the Edit tab reads (pictures.py)
KB = 1024
MB = 1 << 20
# the Edit tab's upload at its largest: the picture, its brush layer and the composite (and
# one more), with the form's boundaries and headers around them
LARGEST_REQUEST = 4 * MAX_UPLOAD_BYTES + 64 * KB


@dataclass(frozen=True)
class UploadLimits:
    budget_bytes: int  # per client per window
    window_seconds: int
    folder_cap_bytes: int  # the upload folder (uploads and Gradio's copies of served files)

    @classmethod
    def from_env(cls) -> "UploadLimits":
        """PAR_UPLOAD_BUDGET_MB per PAR_UPLOAD_WINDOW_S per client; PAR_UPLOAD_FOLDER_MB."""
        def number(name: str, default: float) -> float:
            return max(1.0, float(os.environ.get(name, default)))
        return cls(budget_bytes=int(number("PAR_UPLOAD_BUDGET_MB", 100) * MB),
                   window_seconds=int(number("PAR_UPLOAD_WINDOW_S", 600)),
                   folder_cap_bytes=int(number("PAR_UPLOAD_FOLDER_MB", 2048) * MB))


def is_picture(path: Path) -> bool:
    """The file opens as one of PICTURE_FORMATS (Pillow reads its header only)."""
    try:
        with Image.open(path, formats=PICTURE_FORMATS):
            return True
    except Exception:  # noqa: BLE001 - whatever Pillow finds wrong, it is no picture to keep
        return False


class UploadFolder:
    """The folder Gradio stores uploads in, kept under a cap by removing its oldest files."""

    def __init__(self, root: Path, cap_bytes: int) -> None:
        self.root, self.cap_bytes = root, cap_bytes
        self._lock = threading.Lock()

    def _files(self) -> list[tuple[float, int, Path]]:
        found = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                path = Path(folder, name)
                try:
                    stat = path.stat()
                except OSError:
                    continue  # removed meanwhile
                found.append((stat.st_mtime, stat.st_size, path))
        return found

    def trim(self, keep: set[Path]) -> int:
        """Remove the oldest files (never those in `keep`) until the folder is under its cap;
        the bytes removed."""
        with self._lock:
            files = sorted(self._files())
            total = sum(size for _, size, _ in files)
            removed = 0
            for _, size, path in files:
                if total - removed <= self.cap_bytes:
                    break
                if path in keep:
                    continue
                try:
                    path.unlink()
                    removed += size
                except OSError:
                    continue
                try:
                    path.parent.rmdir()  # Gradio keeps each file in a folder of its own
                except OSError:
                    pass
            return removed


def _answer(status: int, reason: str, headers: dict | None = None) -> PlainTextResponse:
    return PlainTextResponse(reason, status_code=status, headers=headers)


class UploadBudget:
    """Bytes each client (its address) may send in files over the window, counted by `limits`
    (in KB, on a sliding window); shared by every route that takes files."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.item = RateLimitItemPerSecond(max(1, limits.budget_bytes // KB),
                                           limits.window_seconds)
        self.counter = SlidingWindowCounterRateLimiter(MemoryStorage())

    @classmethod
    def from_env(cls) -> "UploadBudget":
        return cls(UploadLimits.from_env())

    def charge(self, scope, length: int) -> PlainTextResponse | None:
        """None when the client's budget takes `length` bytes more, else the 429 to send."""
        client = (scope.get("client") or ("unknown",))[0]
        if self.counter.hit(self.item, client, cost=max(1, math.ceil(length / KB))):
            return None
        reset = self.counter.get_window_stats(self.item, client).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        log.info("upload refused: %s is over its budget", client)
        return _answer(429, f"Upload budget used: at most {self.limits.budget_bytes // MB} MB "
                            f"per {self.limits.window_seconds // 60} minutes per client. Try "
                            f"again in {wait} s.", {"Retry-After": str(wait)})


def declared_length(scope, largest: int) -> tuple[int, PlainTextResponse | None]:
    """(the request's Content-Length, or the 411 / 413 to send when it has none or a larger)."""
    length = dict(scope["headers"]).get(b"content-length", b"")
    if not length.isdigit():
        return 0, _answer(411, "Uploads must declare their size (Content-Length).")
    if int(length) > largest:
        return int(length), _answer(413, f"An upload takes at most {largest} bytes: pictures "
                                         f"of at most {MAX_UPLOAD_BYTES} bytes each.")
    return int(length), None


class UploadGuard:
    """ASGI middleware: the bounds above on POST /gradio_api/upload; other requests pass."""

    def __init__(self, app, budget: UploadBudget) -> None:
        self.app, self.budget = app, budget
        self.folder = UploadFolder(Path(gradio_utils.get_upload_folder()).resolve(),
                                   budget.limits.folder_cap_bytes)

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or not scope["path"].endswith(UPLOAD_PATH)):
            return await self.app(scope, receive, send)
        length, refusal = declared_length(scope, LARGEST_REQUEST)
        if refusal is not None:  # not read: the answer comes at once
            return await refusal(scope, receive, send)
        refusal = self.budget.charge(scope, length)
        if refusal is not None:
            await drain(receive)  # at most LARGEST_REQUEST
            return await refusal(scope, receive, send)
        await self._stored_pictures_only(scope, receive, send)

    async def _stored_pictures_only(self, scope, receive, send) -> None:
        """Let Gradio store the files (its background copy included: the response is held
        until the app returns), then keep them only if every one is a picture."""
        held = HeldResponse()
        await self.app(scope, receive, held)
        start, body = held.start, held.body
        if start is None:
            return
        stored = _stored_paths(start, body)
        if stored:
            not_pictures = [p for p in stored if not await anyio.to_thread.run_sync(is_picture, p)]
            if not_pictures:
                for path in stored:
                    path.unlink(missing_ok=True)
                return await _answer(415, f"Only pictures are kept (PNG, JPEG, WebP or GIF); "
                                          f"{not_pictures[0].name!r} is none.")(scope, None, send)
            await anyio.to_thread.run_sync(self.folder.trim, set(stored))
        await send(start)
        await send({"type": "http.response.body", "body": body})


def _stored_paths(start, body: bytes) -> list[Path]:
    """The files a successful upload stored (Gradio answers with their paths)."""
    if start["status"] != 200:
        return []
    try:
        paths = json.loads(body)
    except ValueError:
        return []
    if not isinstance(paths, list):
        return []
    return [Path(p).resolve() for p in paths if isinstance(p, str)]
