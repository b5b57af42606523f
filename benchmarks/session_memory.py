"""What the server keeps per visitor, and what concurrent visitors cost in wall time.

    python -m benchmarks.session_memory [--app-dir DIR ...] [--sessions 8] [--repeats 2]
                                        [--json out.json]

For each app checkout (default: this one), starts `python app.py` offline on a free port with
PAR_SESSIONS sessions kept, and over raw HTTP (Gradio's /call and /queue API, one fresh
session_hash per run):
  * runs distant 16x 10 times, reads the server's RSS (/proc/PID/status), runs 90 more and reads
    it again: the growth over 90 new sessions, per session;
  * times 8 raster 1x runs from 8 sessions at once against the same 8 one after another.
Reports MB and ratios as JSON; absolute times differ between machines.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.app_latency import start_app
from par_demo.presets import DEFAULT_MODEL
from par_demo.ui.inputs import DEFAULT_STEPS, DEFAULT_WINDOW

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 300
# glibc's per-thread malloc arenas each keep freed pages: with two, RSS is about 15 MB lower
# and nearer what is held (measured: the growth's noise, a few MB, is about the same either way)
STEADY_MALLOC = {"MALLOC_ARENA_MAX": "2"}


def new_session() -> str:
    return uuid.uuid4().hex[:11]


def generate_args(parallel: int = 16, order: str = "distant", seed: int = 0) -> list:
    return [DEFAULT_MODEL, "heart", parallel, order, True, 2.0, 1.0, 0, seed, DEFAULT_WINDOW,
            DEFAULT_STEPS]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return json.load(response)


def call(url: str, endpoint: str, data: list, session: str) -> list:
    """The final output of `endpoint` through Gradio's /call API; raises on an error event."""
    event = _post(f"{url}gradio_api/call/{endpoint}",
                  {"data": data, "session_hash": session})["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{endpoint}/{event}",
                                timeout=TIMEOUT_S) as response:
        lines = response.read().decode().splitlines()
    kinds = [line[7:] for line in lines if line.startswith("event: ")]
    payloads = [line[6:] for line in lines if line.startswith("data: ")]
    if kinds[-1] != "complete":
        raise RuntimeError(f"{endpoint} answered {kinds[-1]}: {payloads[-1][:300]}")
    return json.loads(payloads[-1])


def fn_index(url: str, elem_id: str, trigger: str) -> int:
    """The event that `trigger` on the component `elem_id` fires (the page's private events
    have no API name)."""
    with urllib.request.urlopen(f"{url}config", timeout=TIMEOUT_S) as response:
        config = json.load(response)
    ids = [c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id]
    return next(d["id"] for d in config["dependencies"] if [ids[0], trigger] in d["targets"])


def queued(url: str, index: int, data: list, session: str) -> list:
    """The final output of event `index` through the queue, as the page calls it."""
    with urllib.request.urlopen(f"{url}gradio_api/queue/data?session_hash={session}",
                                timeout=TIMEOUT_S) as stream:
        _post(f"{url}gradio_api/queue/join", {"data": data, "fn_index": index,
                                              "session_hash": session})
        for line in stream:
            message = json.loads(line[6:]) if line.startswith(b"data: ") else {}
            if message.get("msg") == "process_completed":
                if not message["success"]:
                    raise RuntimeError(f"event {index}: {message['output']}")
                return message["output"]["data"]
    raise RuntimeError(f"event {index}: the stream ended without a result")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def runs_from_new_sessions(url: str, count: int, first_seed: int = 0) -> None:
    for seed in range(first_seed, first_seed + count):
        call(url, "generate", generate_args(seed=seed), new_session())


def memory_figures(url: str, pid: int) -> dict:
    runs_from_new_sessions(url, 10)
    after_10 = rss_mb(pid)
    runs_from_new_sessions(url, 90, first_seed=10)
    after_100 = rss_mb(pid)
    return {"rss_after_10_mb": round(after_10, 1), "rss_after_100_mb": round(after_100, 1),
            "per_session_kb": round((after_100 - after_10) / 90 * 1024, 1)}


def raster_runs_seconds(url: str, clients: int, together: bool) -> float:
    def one(seed: int) -> None:
        call(url, "generate", generate_args(1, "raster", seed), new_session())

    started = time.perf_counter()
    if together:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, range(clients)))
    else:
        for seed in range(clients):
            one(seed)
    return time.perf_counter() - started


def measure(app_dir: Path, sessions: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_app(app_dir, Path(tmp), STEADY_MALLOC | {
            "PAR_SESSIONS": str(sessions), "PAR_CONCURRENCY": "2"})
        try:
            call(url, "generate", generate_args(), new_session())  # the warm-up's first run
            memory = [memory_figures(url, proc.pid) for _ in range(repeats)]
            alone = [raster_runs_seconds(url, 8, together=False) for _ in range(repeats)]
            together = [raster_runs_seconds(url, 8, together=True) for _ in range(repeats)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {"app_dir": str(app_dir), "sessions_kept": sessions, "memory": memory,
            "raster_1x_8_one_after_another_s": [round(s, 2) for s in alone],
            "raster_1x_8_at_once_s": [round(s, 2) for s in together],
            "at_once_over_one_after_another": round(
                statistics.median(together) / statistics.median(alone), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--app-dir", type=Path, action="append")
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = [measure(d, args.sessions, args.repeats) for d in args.app_dir or [ROOT]]
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
