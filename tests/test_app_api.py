"""The launched app over HTTP with gradio_client: generation, comparison, exports, bad inputs."""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import imageio.v3 as iio
import pytest
from gradio_client import Client
from PIL import Image

from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.ui import widgets as w
from par_demo.orders import ScheduleSpec, build_schedule

GRID = get_preset(DEFAULT_MODEL).args.grid  # 16: the embedded model's token grid
IMAGE_PX = get_preset(DEFAULT_MODEL).image_size  # 64
VOCAB = get_preset(DEFAULT_MODEL).args.vocab_size  # top-k's upper bound
SHOWN_PX = IMAGE_PX * (256 // IMAGE_PX)  # enlarged crisply to 256
DEFAULTS = dict(cfg=2.0, temperature=1.0, top_k=0, seed=0)
LAST_FRAME_MS = 1500  # how long animation.write_* hold the finished image


def gen_args(klass="heart", parallel=4, order="distant", init=True, cfg=2.0, temperature=1.0,
             top_k=0, seed=0, model=DEFAULT_MODEL, window=3, steps=67):
    return (model, klass, parallel, order, init, cfg, temperature, top_k, seed, window, steps)


@pytest.fixture(scope="module")
def client(app) -> Client:
    return Client(app.url, verbose=False)


@pytest.fixture(scope="module")
def generation(client):
    """One streamed 4x distant generation: (every yielded output, the final output)."""
    job = client.submit(*gen_args(), api_name="/generate")
    final = job.result(timeout=180)
    return job.outputs(), final


def test_api_lists_the_named_endpoints(app):
    """Every endpoint, documented (the MCP tools are another app's, see test_mcp)."""
    with urllib.request.urlopen(f"{app.url}gradio_api/info") as response:
        names = set(json.load(response)["named_endpoints"])
    assert {"/generate", "/stop", "/export", "/compare", "/export_compare", "/schedule",
            "/schedule_step", "/schedule_animation"} <= names


PARAMETERS = {  # what view_api names, in the order of a positional call
    "/generate": ["model", "class_name", "parallel", "order", "init_tokens", "cfg",
                  "temperature", "top_k", "seed", "window", "steps"],
    "/compare": ["model", "class_name", "orderings", "overlay", "cfg", "temperature", "top_k",
                 "seed"],
    "/edit": ["model", "picture", "region", "class_name", "parallel", "order", "init_tokens",
              "cfg", "temperature", "top_k", "seed"],
}


def test_view_api_names_every_parameter_with_its_range(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for name, parameters in PARAMETERS.items():
        listed = endpoints[name]["parameters"]
        assert [p["parameter_name"] for p in listed] == parameters
        described = endpoints[name]["description"]
        assert all(f"\n{p}: " in described for p in parameters), described
    assert "seed: a whole number, 0 to 2147483647" in endpoints["/generate"]["description"]


def test_a_keyword_call_takes_the_page_defaults_for_the_rest(client):
    *_, status, details = client.predict(class_name="heart", parallel=16, seed=5,
                                         api_name="/generate")
    assert "Done" in status and details["seed"] == 5 and details["tokens_per_step_max"] == 16
    assert details["class_label"] == w.class_label(DEFAULT_MODEL, "heart") and details["ordering"].startswith("distant 16x")


def test_generation_streams_to_the_final_image(generation):
    outputs, (image, overlay, tokens, entropy, status, details) = generation
    steps = build_schedule(ScheduleSpec(GRID, "distant", 4, True)).num_steps
    assert steps == 67
    assert details["steps"] == steps and details["steps_done"] == steps and details["complete"]
    assert details["tokens_per_step_max"] == 4
    assert details["speedup_in_steps"] == pytest.approx(GRID * GRID / steps, abs=1e-3)
    assert f"{steps} steps" in status and "Done" in status
    # which time is which, and where it ran (the CPU's name, or the GPU's)
    assert re.search(r"model time [\d.]+ s .* wall time [\d.]+ s", status)
    assert f"on {details['device']}" in status and details["device"].startswith(("cpu (", "cuda ("))
    assert ("first run since start (cold" in status) == details["cold_start"]
    for path in (image, overlay, tokens):
        assert Image.open(path).size == (SHOWN_PX, SHOWN_PX)
    assert Image.open(entropy).size[0] == SHOWN_PX  # the heat map, its colour scale below

    # it streamed: live lines "Step i of 67" came before the end, with growing i
    live = [o[4] for o in outputs if isinstance(o[4], str) and o[4].startswith("Step")]
    seen = [int(re.match(r"Step \*\*(\d+)\*\* of \*\*(\d+)\*\*", s).group(1)) for s in live]
    # the first frame is the worker's state when the page first asks: one step or a few
    assert seen and seen == sorted(seen) and 1 <= seen[0] and max(seen) < steps
    assert all(f"of **{steps}**" in s and "ms this step" in s and "s so far" in s for s in live)


def test_export_writes_gif_and_mp4_with_one_frame_per_step(client, generation):
    frame_ms = 100
    gif, mp4, preview, note = client.predict(True, frame_ms, api_name="/export")
    steps = generation[1][5]["steps"]
    assert Path(gif).suffix == ".gif" and Path(mp4).suffix == ".mp4"
    gif_frames = iio.imread(gif, index=None)
    assert gif_frames.shape[0] == steps
    assert gif_frames.shape[2] == SHOWN_PX  # panel width; a caption strip sits below
    mp4_frames = sum(1 for _ in iio.imiter(mp4, plugin="FFMPEG"))
    assert mp4_frames == steps + round(LAST_FRAME_MS / frame_ms) - 1  # last frame held
    assert f"{steps} frames" in note


def test_compare_table_matches_the_schedules(client):
    keys = ["distant 16x", "raster 16x", "distant 16x no-init"]
    specs = [ScheduleSpec(GRID, "distant", 16, True), ScheduleSpec(GRID, "raster", 16, True),
             ScheduleSpec(GRID, "distant", 16, False)]
    frame, table, status = client.predict(DEFAULT_MODEL, "heart", keys, True, *DEFAULTS.values(),
                                          api_name="/compare")
    rows = table["data"]
    steps = [build_schedule(s).num_steps for s in specs]
    assert steps == [31, 31, 16]
    assert [r[0] for r in rows] == keys
    assert [r[1] for r in rows] == ["16 per step after 16 single", "16 per step after 16 single",
                                    "16 per step"]
    assert [r[2] for r in rows] == steps
    assert [r[3] for r in rows] == [16, 16, 16]
    assert [r[4] for r in rows] == [round(GRID * GRID / n, 2) for n in steps]
    assert all(isinstance(r[5], float) and r[5] > 0 for r in rows)  # measured seconds
    assert "Done" in status and "model time" in status and "wall time" in status
    width, _ = Image.open(frame).size
    assert width == 3 * 192 + 2 * 6  # three panels side by side

    frame_ms = 200
    gif, mp4, _, _ = client.predict(False, frame_ms, api_name="/export_compare")
    assert iio.imread(gif, index=None).shape[0] == max(steps)  # one frame per tick
    assert sum(1 for _ in iio.imiter(mp4, plugin="FFMPEG")) == \
        max(steps) + round(LAST_FRAME_MS / frame_ms) - 1


@pytest.mark.parametrize("args, message", [
    (gen_args(klass="hippogriff"), "no class is called 'hippogriff'"),
    (gen_args(klass="99999"), "out of range"),
    (gen_args(temperature=0), "temperature must be in 0.05..10, got 0"),
    (gen_args(cfg=-1), "guidance scale must be in 0..20, got -1"),
    (gen_args(top_k=-3), f"top-k must be in 0..{VOCAB}, got -3"),
    (gen_args(parallel=3), "parallelism must be one of 1x, 4x, 16x"),
    (gen_args(model="PAR-XL-4x", klass="tiger"), "PAR-XL-4x"),
    (gen_args(order="zipar", window=20), "window must be 1 to 16"),
    (gen_args(order="random-cosine", steps=0), "steps must be in 1..1024, got 0"),
])
def test_bad_input_gets_a_clear_message(client, app, args, message):
    with pytest.raises(Exception) as info:
        client.predict(*args, api_name="/generate")
    text = str(info.value)
    assert message in text
    assert "Traceback" not in text and "File \"" not in text


def test_nothing_to_export_and_bad_frame_duration_are_clear(app):
    fresh = Client(app.url, verbose=False)  # a new session: no run yet
    with pytest.raises(Exception, match="generate an image first"):
        fresh.predict(True, 100, api_name="/export")
    with pytest.raises(Exception, match="choose 2 to 4 orderings"):
        fresh.predict(DEFAULT_MODEL, "heart", ["distant 4x"], True, *DEFAULTS.values(),
                      api_name="/compare")


def test_concurrent_users_are_queued_and_all_served(app):
    clients = [Client(app.url, verbose=False) for _ in range(3)]  # three sessions at once
    jobs = [c.submit(*gen_args(parallel=16, seed=i), api_name="/generate")
            for i, c in enumerate(clients)]
    details = [job.result(timeout=180)[5] for job in jobs]
    assert [d["steps"] for d in details] == [31, 31, 31]
    assert all(d["complete"] for d in details)
    assert [d["seed"] for d in details] == [0, 1, 2]


def test_schedule_explorer_endpoint(client):
    figure, text, _, progress = client.predict(24, 4, "distant", True, 3, 67, api_name="/schedule")
    assert Image.open(figure).size[0] > 0 and "147 steps" in text
    # settings no schedule can have are explained in place, not raised as errors
    figure, text, _, progress = client.predict(7, 4, "distant", True, 3, 67, api_name="/schedule")
    assert figure is None and progress is None
    assert "No such schedule" in text and "do not divide a 7x7 grid" in text


def test_bad_input_leaves_no_traceback_in_the_server_log(client, app):
    """Refusals are answers, not failures: the server logs no traceback for them."""
    assert "Running on local URL" in app.log_text()  # the log is the app's own output
    for args in (gen_args(klass="hippogriff"), gen_args(seed=-1), gen_args(model="nope")):
        with pytest.raises(Exception):
            client.predict(*args, api_name="/generate")
    with pytest.raises(Exception):
        client.predict(True, 1, api_name="/export")
    assert "Traceback" not in app.log_text()
