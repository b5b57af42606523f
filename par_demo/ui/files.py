"""The app's temporary files, in one store with one pruner: the pictures the page is sent (named
by their content) and each session's exports and animations. Anything untouched for
KEEP_SECONDS is removed, checked at most once a minute as new files are written."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

KEEP_SECONDS = 2 * 3600
PRUNE_EVERY_SECONDS = 60


class FileStore:
    def __init__(self, root: Path, keep_seconds: float = KEEP_SECONDS) -> None:
        self.root, self.keep_seconds = root, keep_seconds
        self.pictures, self.sessions = root / "pictures", root / "sessions"
        self._lock = threading.Lock()
        self._pruned = 0.0

    def prune(self) -> None:
        now = time.time()
        with self._lock:
            if now - self._pruned < PRUNE_EVERY_SECONDS:
                return
            self._pruned = now
        for folder in (self.pictures, self.sessions):
            if not folder.is_dir():
                continue
            for old in folder.iterdir():
                try:
                    if now - old.stat().st_mtime > self.keep_seconds:
                        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()
                except OSError:
                    pass

    def picture(self, image_HW3: np.ndarray) -> str:
        """The picture as a PNG file named by its content, written atomically. Gradio caches a
        numpy picture by rewriting the file of its content hash in place, so a picture that two
        streams show at once could be served half-written; a file path it copies atomically."""
        self.prune()
        self.pictures.mkdir(parents=True, exist_ok=True)
        image = np.ascontiguousarray(image_HW3, dtype=np.uint8)
        digest = hashlib.sha1(repr(image.shape).encode() + image.tobytes()).hexdigest()
        path = self.pictures / f"{digest}.png"
        if path.exists():
            os.utime(path)  # in use again: not pruned
            return str(path)
        partial = self.pictures / f".{digest}.{os.getpid()}.{time.monotonic_ns()}.png"
        Image.fromarray(image).save(partial, compress_level=1)  # speed over a few bytes
        os.replace(partial, path)
        return str(path)

    def session_dir(self, session: str | None) -> Path:
        """This session's folder for exports and animations."""
        self.prune()
        name = re.sub(r"[^A-Za-z0-9_-]", "", session or "")[:64] or "local"
        folder = self.sessions / name
        folder.mkdir(parents=True, exist_ok=True)
        folder.touch()
        return folder


FILES = FileStore(Path(tempfile.gettempdir()) / "par_demo_files")
