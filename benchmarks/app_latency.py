"""What a visitor waits, click to done, against what the engine needs for the same run.

    python -m benchmarks.app_latency [--app-dir DIR] [--repeats 3] [--visitors 1 2 4]
                                     [--json out.json]

Starts `python app.py` from DIR (default: this checkout) on a free port, offline, and drives
the Generate tab in headless Chromium (Debian's, through Playwright) as a visitor does: pick a
parallelism and ordering, click Generate. The page's own clock (performance.now, a
MutationObserver on the status line and the picture) gives click-to-first-frame and
click-to-done. The first run after start is the cold one; the others are warm. With several
visitors, each has its own browser context and all click at once; their final pictures are
compared with the solo run's bytes. The engine's time for the same run (model, class, seed,
threads) is `python -m par_demo generate` in a subprocess, measured in the same invocation.
Reports ratios (page / engine) as JSON and a table: absolute times differ between machines.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUNS = {  # name -> (parallelism radio label, ordering, initial tokens)
    "raster 1x": ("1x", "raster", False),
    "distant 4x": ("4x", "distant", True),
    "distant 16x": ("16x", "distant", True),
}
TIMEOUT_MS = 180_000

# Records click time, the first change of the picture after it, and the status line's "Done".
PROBE = """() => {
  const w = window;
  w.__par = {click: null, first: null, done: null, busy: false};
  const run = document.querySelector('#gen-run');
  run.addEventListener('click', () => {
    w.__par = {click: performance.now(), first: null, done: null, busy: false,
               src: (document.querySelector('#gen-image img') || {}).src || null};
  }, {capture: true});
  new MutationObserver(() => {
    const p = w.__par;
    if (p.click === null) return;
    const img = document.querySelector('#gen-image img');
    if (p.first === null && img && img.src && img.src !== p.src) p.first = performance.now();
    const status = document.querySelector('#gen-status');
    if (!status) return;
    // the previous run's "Done" line stays until the new run's first status arrives
    if (!/Done/.test(status.innerText)) p.busy = true;
    else if (p.busy && p.done === null) p.done = performance.now();
  }).observe(document.body, {subtree: true, childList: true, attributes: true,
                              characterData: true});
}"""


@dataclass
class Visit:
    run: str
    visitors: int
    cold: bool
    first_frame_s: float
    done_s: float
    image_sha1: str
    ms_per_step: float  # the model time per step the done line reports


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(app_dir: Path, tmp: Path, extra_env: dict | None = None
              ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SPACE_ID", "SPACES_ZERO_GPU")}
    env.update(GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               GRADIO_TEMP_DIR=str(tmp / "gradio"), TMPDIR=str(tmp), PYTHONUNBUFFERED="1",
               PAR_CONCURRENCY=env.get("PAR_CONCURRENCY", "4"))
    env.update(extra_env or {})
    log = open(tmp / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=app_dir, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"app.py exited: {(tmp / 'app.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    sys.exit("app.py did not answer within 120 s")


def open_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.locator("#gen-run").wait_for()
    new_seed = page.locator("#gen-new-seed input")
    if new_seed.count() and new_seed.is_checked():
        new_seed.uncheck()  # every visitor draws seed 0: their pictures must equal the solo run's
    page.evaluate(PROBE)
    return page


def choose(page, run: str) -> None:
    parallel, order, init = RUNS[run]
    page.locator("#gen-parallel").get_by_label(parallel, exact=True).check()
    page.locator("#gen-order").get_by_label(order, exact=True).check()
    box = page.get_by_label("Sequential initial tokens")
    if box.is_enabled() and box.is_checked() != init:
        box.set_checked(init)
    page.wait_for_timeout(300)  # the page's own check of the combination


def image_sha1(page) -> str:
    src = page.locator("#gen-image img").get_attribute("src")
    with urllib.request.urlopen(src, timeout=30) as r:
        return hashlib.sha1(r.read()).hexdigest()


def visit(pages, run: str, cold: bool) -> list[Visit]:
    for page in pages:
        choose(page, run)
    for page in pages:  # as close to at once as one driver gets
        page.locator("#gen-run").click(no_wait_after=True)
    out = []
    for page in pages:
        page.wait_for_function("() => window.__par.done !== null", timeout=TIMEOUT_MS)
        t = page.evaluate("() => window.__par")
        first = t["first"] if t["first"] is not None else t["done"]
        status = page.locator("#gen-status").inner_text()
        out.append(Visit(run, len(pages), cold, (first - t["click"]) / 1000,
                         (t["done"] - t["click"]) / 1000, image_sha1(page),
                         float(re.search(r"([\d.]+) ms per step", status).group(1))))
    return out


def engine_runs(app_dir: Path, run: str, repeats: int, threads: int) -> list[dict]:
    """The command line's summaries of `repeats` runs: seconds and seconds_per_step."""
    parallel, order, init = RUNS[run]
    cmd = [sys.executable, "-m", "par_demo", "generate", "--class", "heart",
           "--parallel", parallel.rstrip("x"), "--order", order, "--seed", "0"]
    if not init:
        cmd.append("--no-init")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PAR_TORCH_THREADS=str(threads))
    summaries = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            done = subprocess.run(cmd + ["--out", f"{tmp}/run.gif"], cwd=app_dir, env=env,
                                  capture_output=True, text=True, check=True)
            summaries.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return summaries


def median(values) -> float:
    return round(statistics.median(values), 3)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--app-dir", type=Path, default=ROOT)
    p.add_argument("--repeats", type=int, default=3, help="warm runs per ordering")
    p.add_argument("--visitors", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    from playwright.sync_api import sync_playwright

    threads = max(1, (os.cpu_count() or 1) // 2)  # what app.py gives a run at 2 at once
    visits: list[Visit] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        proc, url = start_app(a.app_dir, Path(tmp))
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            solo = open_page(browser, url)
            for i, run in enumerate(a.runs):
                visits += visit([solo], run, cold=i == 0)
                for _ in range(a.repeats):
                    visits += visit([solo], run, cold=False)
            for n in (v for v in a.visitors if v > 1):
                crowd = [solo] + [open_page(browser, url) for _ in range(n - 1)]
                for run in a.runs:
                    visits += visit(crowd, run, cold=False)
        finally:
            browser.close()
            proc.terminate()
            proc.wait(30)
    engine_summaries = {run: engine_runs(a.app_dir, run, a.repeats, threads) for run in a.runs}
    engine = {run: [s["seconds"] for s in runs] for run, runs in engine_summaries.items()}

    rows = []
    for run in a.runs:
        warm = [v for v in visits if v.run == run and v.visitors == 1 and not v.cold]
        solo_sha = warm[-1].image_sha1
        row = {"run": run, "engine_s": median(engine[run]),
               "engine_s_range": [min(engine[run]), max(engine[run])],
               "warm_done_s": median(v.done_s for v in warm),
               "warm_done_range": [min(v.done_s for v in warm), max(v.done_s for v in warm)],
               "warm_first_frame_s": median(v.first_frame_s for v in warm)}
        row["warm_done_over_engine"] = round(row["warm_done_s"] / row["engine_s"], 2)
        row["engine_ms_per_step"] = median(1000 * s["seconds_per_step"]
                                           for s in engine_summaries[run])
        row["app_ms_per_step"] = median(v.ms_per_step for v in warm)
        row["app_step_over_engine"] = round(row["app_ms_per_step"] / row["engine_ms_per_step"],
                                            2)
        cold = [v for v in visits if v.run == run and v.cold]
        if cold:
            row["cold_done_s"] = round(cold[0].done_s, 3)
            row["cold_first_frame_s"] = round(cold[0].first_frame_s, 3)
            row["cold_over_warm"] = round(cold[0].done_s / row["warm_done_s"], 2)
        for n in (v for v in a.visitors if v > 1):
            crowd = [v for v in visits if v.run == run and v.visitors == n]
            row[f"{n}_visitors_done_over_solo_max"] = round(
                max(v.done_s for v in crowd) / row["warm_done_s"], 2)
            row[f"{n}_visitors_identical"] = all(v.image_sha1 == solo_sha for v in crowd)
        rows.append(row)
    result = {"app_dir": str(a.app_dir), "cpu_count": os.cpu_count(), "rows": rows,
              "visits": [asdict(v) for v in visits]}
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    keys = ["run", "engine_s", "warm_done_s", "warm_done_over_engine", "engine_ms_per_step",
            "app_ms_per_step", "app_step_over_engine", "warm_first_frame_s",
            "cold_done_s", "cold_over_warm"] + [
        k for n in a.visitors if n > 1
        for k in (f"{n}_visitors_done_over_solo_max", f"{n}_visitors_identical")]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    main()
