"""Shared fixtures: `python app.py` launched on a free port, as a visitor would run it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class RunningApp:
    url: str
    log: Path  # everything app.py printed
    pid: int

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def launched(tmp: Path, **env_vars: str) -> Iterator[RunningApp]:
    """`python app.py` in a subprocess (offline, its temp dirs under `tmp`, `env_vars` added to
    its environment), stopped on exit."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SPACE_ID", "SPACES_ZERO_GPU")}
    env.update(GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               GRADIO_TEMP_DIR=str(tmp / "gradio"), TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
    env.update(env_vars)
    log_path = tmp / "app.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with {proc.returncode}:\n"
                            f"{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"app.py did not answer on {url} within {START_TIMEOUT_S} s:\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield RunningApp(url, log_path, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def app(tmp_path_factory) -> Iterator[RunningApp]:
    """`python app.py` as a visitor would run it, once per session."""
    with launched(tmp_path_factory.mktemp("app")) as running:
        yield running
