"""The MCP tools (`launch(mcp_server=True)` serves them at /gradio_api/mcp/): typed, stateless
functions registered with gr.api, so each tool's schema comes from its type hints and its text
from its docstring. They are declared by an app of their own (tools_app.py) and run on the page
(registered there undocumented). Each call reads its values with the page's strict readers
(inputs.py), runs through the page's queue (the model tools share the page's "model"
concurrency group) and returns its files itself: MCP calls carry no session to keep a run in."""
import base64
import binascii
import functools
import json
import math
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

import gradio as gr
import numpy as np
from anyio.to_thread import run_sync
from gradio.mcp import DEFAULT_TEMP_DIR, GradioMCPServer

from par_demo import dependency, editing
from par_demo.dependency_figures import draw_dependency, draw_estimated_map
from par_demo.heldout import HeldoutGrids
from par_demo.masks import REGIONS, region_mask
from par_demo.orders import ORDERS, PAR_ORDERS, ScheduleSpec
from par_demo.pictures import read_picture
from par_demo.presets import DEFAULT_MODEL, PRESETS, ModelPreset, UnsupportedSchedule, get_preset
from par_demo.preview import decode_tokens, enlarge
from par_demo.training_codes import TrainingCodes, shipped_maps
from par_demo.ui import explorer, inputs, machine, views
from par_demo.ui.errors import fail, friendly, shown
from par_demo.ui.files import FILES
from par_demo.ui.inputs import COMPARE_ORDERINGS, RunPlan, plan_compare
from par_demo.ui.runs import COMPARE_HEADERS, compare_stream, compare_table, generation_stream

ModelName = Literal[tuple(PRESETS)]
Parallelism = Literal[inputs.PARALLEL_CHOICES]
Ordering = Literal[ORDERS]
RegionOrdering = Literal[PAR_ORDERS]  # an edit orders a region with PAR's orders only
CompareOrdering = Literal[tuple(COMPARE_ORDERINGS)]
Region = Literal[REGIONS]
DependencyMethod = Literal["estimator", "model"]


# A tool waits in the page's queue in the concurrency group of the page's events that do the
# same work, so a flood of tool calls takes no more slots than those events have.
MODEL_QUEUE = "model"  # the page's runs (widgets.RUN)
FIGURE_QUEUE = "ui"  # the page's schedule explorer (understand.build)
EMBEDDED_GRID = PRESETS[DEFAULT_MODEL].args.grid
ONLY_LAST_FRAME = math.inf  # a tool shows no previews: draw the first and last step only


def _class_list(model: str) -> str:
    names = PRESETS[model].class_names()
    return "; ".join(names.label(i) for i in range(len(names)))


def _runnable(preset: ModelPreset, spec: ScheduleSpec):
    try:
        return preset.check(spec)
    except UnsupportedSchedule as err:
        fail(str(err), title="This model cannot run that ordering")


def _last(stream):
    """A run's last item: the finished run (its stream ends with the last step)."""
    return deque(stream, maxlen=1).pop()


def _image(image_HW3) -> gr.FileData:
    """A PNG file, which the MCP layer sends as image content plus its URL."""
    return gr.FileData(path=FILES.picture(image_HW3), mime_type="image/png")


@friendly
def generate_image(class_name: str, parallelism: Parallelism = 4, ordering: Ordering = "distant",
                   initial_tokens: bool = True, seed: int = 0,
                   model: ModelName = DEFAULT_MODEL, window: int = inputs.DEFAULT_WINDOW,
                   steps: int = inputs.DEFAULT_STEPS) -> tuple[gr.FileData, str]:
    """Generate one image with PAR (parallelized autoregressive generation) and report how many
    steps it took; the same arguments always give the same picture. Returns the final picture
    (PNG) and a JSON text: steps, tokens_per_step_max, seconds (model time: the steps alone),
    wall_seconds (start to done), device, step_path and the settings used. The embedded model's
    classes: CLASSES.

    Args:
        class_name: what to draw: a class name (or part of one) or its index
        parallelism: tokens generated per step (1: one at a time, the baseline); raster, distant and random only
        ordering: ORDERING_HELP
        initial_tokens: the first token of each region one at a time, before the rest (PAR stage 1)
        seed: random seed, 0..2147483647
        model: the model; released ones need their files, and without a GPU run slowly on the CPU
        window: zipar only: a row starts once the row above has this many tokens (1..grid)
        steps: random-cosine only: its number of steps (1..grid * grid)
    """
    started = time.perf_counter()
    preset = inputs.usable_preset(model)
    schedule = _runnable(preset, inputs.ordering_spec(preset.args.grid, parallelism, ordering,
                                                      initial_tokens, window, steps))
    class_id, class_label = inputs.class_id(preset, class_name)
    config = replace(preset.sampling, seed=inputs.number(seed, "seed", *inputs.SEED_RANGE,
                                                         integer=True))
    plan = RunPlan(preset.name, class_id, class_label, schedule, config)
    record, pictures = _last(generation_stream(plan, ONLY_LAST_FRAME))
    report = record.summary() | {"wall_seconds": round(time.perf_counter() - started, 4)}
    return _image(pictures.image), json.dumps(report)


@friendly
def compare_orderings(class_name: str, orderings: list[CompareOrdering], seed: int = 0,
                      model: ModelName = DEFAULT_MODEL) -> tuple[gr.FileData, str]:
    """Generate the same class with the same seed in 2 to 4 orderings and put the final pictures
    side by side. Returns the picture (PNG, one captioned panel per ordering) and a JSON list
    with one row per ordering: HEADERS.

    Args:
        class_name: what to draw: a class name (or part of one) or its index
        orderings: 2 to 4 different orderings, e.g. ["raster 1x", "distant 4x", "distant 16x"]
        seed: random seed, 0..2147483647
        model: the model; released ones need their files, and without a GPU run slowly on the CPU
    """
    preset = inputs.usable_preset(model)
    sampling = preset.sampling
    plan = plan_compare(preset.name, class_name, orderings, sampling.cfg_scale,
                        sampling.temperature, sampling.top_k, seed)
    records, frame = _last(compare_stream(plan, overlay=False,
                                          frame_interval=ONLY_LAST_FRAME))
    rows = [dict(zip(COMPARE_HEADERS, row)) for row in compare_table(records)]
    return _image(frame), json.dumps(rows)


@friendly
def schedule_figure(grid: int = EMBEDDED_GRID, parallelism: Parallelism = 4,
                    ordering: Ordering = "distant", initial_tokens: bool = True,
                    window: int = inputs.DEFAULT_WINDOW,
                    steps: int = inputs.DEFAULT_STEPS) -> tuple[gr.FileData, str]:
    """Draw the paper's Figure 3 for a schedule: the step at which each token of a grid x grid
    image is generated; needs no model. Returns the figure (PNG) and a JSON text: steps, tokens,
    speedup_in_steps (tokens / steps) and a description.

    Args:
        grid: tokens per side, 2..32 (the embedded model's is 16, the released models' 24)
        parallelism: tokens generated per step; raster, distant and random only
        ordering: ORDERING_HELP
        initial_tokens: the first token of each region one at a time, before the rest (PAR stage 1)
        window: zipar only: a row starts once the row above has this many tokens (1..grid)
        steps: random-cosine only: its number of steps (1..grid * grid)
    """
    schedule = explorer.explored_schedule(grid, parallelism, ordering, initial_tokens, window,
                                          steps)
    image, text, num_steps = explorer.schedule_figure(grid, parallelism, ordering,
                                                      initial_tokens, window, steps)
    report = {"steps": num_steps, "tokens": schedule.grid ** 2,
              "speedup_in_steps": round(views.speedup_steps(schedule), 4), "description": text}
    return _image(image), json.dumps(report)


FILE_ROUTE = "/gradio_api/file="  # how the app serves a file: the URLs the tools return


def _served_folders() -> tuple[Path, ...]:
    """Where the files behind the tools' picture URLs are: Gradio's cache (it serves a copy of
    each returned file) and the app's own store."""
    return (Path(DEFAULT_TEMP_DIR).resolve(), FILES.root.resolve())


def _picture_bytes(image) -> bytes | Path:
    """The `image` argument of edit_image / dependency_map: a data: URL or plain base64 of the
    file, or the URL of a picture this app returned (read from its own files, never fetched).

    A plain `str`, not gr.FileData: Gradio 6.31's MCP layer (gradio/mcp.py) would list a
    FileData parameter as a string "Gradio File Input - a http or https url to a file", turn a
    data: URL into a cached file and hand an http(s) URL to the server, which downloads it
    through its SSRF guard (safehttpx: public addresses only, so a local app's own 127.0.0.1
    URLs fail), and refuse any other string with "Invalid file data format", naming no field."""
    if not isinstance(image, str) or not image.strip():
        fail(f"image must be a picture: a data: URL or base64 of a PNG/JPEG/WebP/GIF file, or "
             f"the URL of a picture this app returned, got {shown(image)}")
    text = image.strip().removeprefix("Image URL:").strip()  # the text a tool's result has
    if text.startswith(("http://", "https://")):
        path = unquote(urlparse(text).path)
        if FILE_ROUTE in path:
            local = Path(path.split(FILE_ROUTE, 1)[1]).resolve()
            if any(local.is_relative_to(d) for d in _served_folders()) and local.is_file():
                return local
        fail(f"image: {shown(text)} is no picture this app returned (its URLs hold "
             f"{FILE_ROUTE}); other URLs are not fetched: send the file as a data: URL or base64")
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if not header.endswith(";base64"):
            fail("image: a data: URL must be base64 (data:image/png;base64,...)")
    if len(text) > 4 * inputs.MAX_UPLOAD_BYTES // 3 + 4:
        fail(f"image: the file is larger than {inputs.MAX_UPLOAD_BYTES >> 20} MB")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        fail(f"image must be a data: URL or base64 of a picture file, or the URL of a picture "
             f"this app returned, got {shown(image)}")


@functools.lru_cache(maxsize=1)
def _editing_tokenizer():
    """The embedded model's tokenizer with its encoder (the app's copy only decodes)."""
    return editing.load_editing_tokenizer(get_preset(DEFAULT_MODEL))


def _encoded(image):
    preset = get_preset(DEFAULT_MODEL)
    picture = read_picture(_picture_bytes(image), preset.image_size, field="image")
    return picture, editing.encode_picture(_editing_tokenizer(), picture)


@functools.lru_cache(maxsize=1)
def _heldout() -> HeldoutGrids:
    return HeldoutGrids.load()


@friendly
def edit_image(image: str, region: Region, class_name: str, parallelism: Parallelism = 4,
               ordering: RegionOrdering = "distant", initial_tokens: bool = True,
               seed: int = 0) -> tuple[gr.FileData, str]:
    """Edit a picture with the embedded any-order model: encode it to its 16x16 token grid, keep
    the tokens outside `region` and regenerate the region's cells with PAR, conditioned on the
    kept ones (inpainting; "border" is outpainting). The same arguments give the same picture.
    Returns the edited picture (PNG) and a JSON text: steps, kept_cells, generated_cells,
    seconds (model time), psnr (dB of the picture's token reconstruction, what the kept cells
    look like), notes on reading the file, and the settings used.

    Args:
        image: the picture (PNG, JPEG, WebP or GIF; at most 10 MB; any shape, padded square on white): a data: URL ("data:image/png;base64,...") or plain base64 of the file, or the "Image URL" of a picture a tool of this app returned (so a generate_image result can be edited); other URLs are not fetched
        region: the cells to regenerate: a half (left, right, top, bottom), the centre (the middle half of each side) or the border around it
        class_name: what the regenerated cells should show: a class name (or part of one) or its index (see generate_image)
        parallelism: tokens generated per step (1: one at a time, the baseline)
        ordering: cells generated together: distant (PAR: far apart), raster (neighbours), random
        initial_tokens: the first token of each region one at a time, before the rest (PAR stage 1)
        seed: random seed, 0..2147483647
    """
    preset = get_preset(DEFAULT_MODEL)
    mask = region_mask(inputs.choice(region, "region", REGIONS), preset.args.grid)
    spec = ScheduleSpec(grid=0, order=inputs.choice(ordering, "ordering", PAR_ORDERS),
                        parallel=inputs.parallelism(parallelism),
                        init_tokens=inputs.boolean(initial_tokens, "initial tokens"))
    class_id, class_label = inputs.class_id(preset, class_name)
    config = replace(preset.sampling, seed=inputs.number(seed, "seed", *inputs.SEED_RANGE,
                                                         integer=True))
    picture, encoded = _encoded(image)
    plan = editing.plan_edit(preset, encoded.tokens, mask, spec)
    loaded = machine.MODELS.get(DEFAULT_MODEL, "cpu")
    seconds, event = 0.0, None
    for event in editing.run_plan(loaded.transformer, plan, [class_id], config,
                                  **machine.step_options()):
        seconds += event.step_seconds
    grid = preset.args.grid
    final = decode_tokens(loaded.tokenizer, event.tokens[:1], grid)[0]
    report = {"steps": plan.steps, "kept_cells": plan.kept_cells,
              "generated_cells": plan.generated_cells, "seconds": round(seconds, 4),
              "psnr": round(encoded.psnr, 2), "region": region, "class": class_id,
              "class_name": class_label, "ordering": plan.schedule.spec.label, "seed": seed,
              "model": preset.name, "notes": list(picture.notes)}
    return _image(enlarge(final, views.DISPLAY_PX)), json.dumps(report)


def _nats(map_GG) -> list[list[float | None]]:
    return [[None if v != v else round(float(v), 4) for v in row] for row in map_GG]


def _rings(cell, information) -> dict[str, float]:
    rings = dependency.information_rings(cell, np.nan_to_num(information))
    return {k: round(v, 4) for k, v in rings.items()}


@friendly
def dependency_map(row: int, col: int, image: str = "", picture_index: int = -1,
                   class_name: str = "",
                   method: DependencyMethod = "estimator") -> tuple[gr.FileData, str]:
    """The paper's Figure 9 for one cell: how much knowing the token of cell (row, col) tells
    about every other cell, in nats. method "estimator" (the default) is the paper's own
    measurement over the app's PICTURES real training emoji (no picture needed): Gaussian bounds
    on the entropy of each cell's codebook feature, from least-squares predictions, with nothing
    known (prior) and given the cell. method "model" asks the embedded any-order model about one
    picture: its entropy of each cell's token with nothing known and once the cell's token is
    known, teacher-forced with the picture's own tokens; give `image`, or `picture_index` for one
    of the app's held-out emoji (HELDOUT pictures). Returns the figure (PNG: the two maps and
    their difference, the information; the picture too for "model") and a JSON text: method,
    cell, entropy and prior_entropy (16x16 lists, row by row, nats; the estimator's entropy is
    null at the cell itself, -infinity), information_by_distance (mean information at distance
    1, 2, 3 and 4+), for "estimator" pictures and information_error (the stated error of every
    information value), for "model" the class and the picture's class when held-out.

    Args:
        row: the known cell's row, 0..15 (top to bottom)
        col: the known cell's column, 0..15 (left to right)
        image: model only: the picture (as edit_image takes it): a data: URL or plain base64 of a PNG/JPEG/WebP/GIF file, or the "Image URL" of a picture a tool of this app returned; leave empty with picture_index
        picture_index: model only: one of the held-out emoji, 0..LAST_HELDOUT; -1 (the default): use image
        class_name: model only: the class the model is told (a name, part of one, or an index); empty: unconditional (no class)
        method: estimator (the paper's, over real training emoji) or model (the embedded model's belief about one picture)
    """
    grid = get_preset(DEFAULT_MODEL).args.grid
    cell = (inputs.number(row, "row", 0, grid - 1, integer=True),
            inputs.number(col, "col", 0, grid - 1, integer=True))
    method = inputs.choice(method, "method", ("estimator", "model"))
    if method == "estimator":
        return _estimated_map(cell, image, picture_index, class_name)
    return _model_map(cell, image, picture_index, class_name)


def _estimated_map(cell, image, picture_index, class_name) -> tuple[gr.FileData, str]:
    for value, unset, field in ((image, ("", None), "image"),
                                (picture_index, (-1, None), "picture_index"),
                                (class_name, ("", None), "class_name")):
        if value not in unset:
            fail(f"{field}: the estimator measures over the app's training emoji, not one "
                 f"picture; give method \"model\" for that")
    result = shipped_maps().map(cell)
    report = {"method": "estimator", "cell": list(cell), "pictures": result.pictures,
              "information_error": round(result.error, 4),
              "information_by_distance": _rings(cell, result.information),
              "entropy": _nats(result.entropy), "prior_entropy": _nats(result.prior_entropy)}
    return _image(np.asarray(draw_estimated_map(result))), json.dumps(report)


def _model_map(cell, image, picture_index, class_name) -> tuple[gr.FileData, str]:
    preset = get_preset(DEFAULT_MODEL)
    grid = preset.args.grid
    heldout = _heldout()
    index = inputs.number(picture_index, "picture_index", -1, len(heldout) - 1, integer=True)
    if not isinstance(class_name, str):
        fail(f"class must be a name or an index, or empty (unconditional), got "
             f"{shown(class_name)}")
    class_id = inputs.class_id(preset, class_name)[0] if class_name.strip() else None
    loaded = machine.MODELS.get(DEFAULT_MODEL, "cpu")
    report = {}
    if index >= 0:
        if image not in ("", None):
            fail("image: give a picture or a picture_index, not both")
        tokens = heldout.codes[index].reshape(-1)
        label = int(heldout.labels[index])
        report["picture_class"] = label
        report["picture_class_name"] = preset.class_names().label(label)
        picture_HW3 = decode_tokens(loaded.tokenizer, tokens[None], grid)[0]
    else:
        picture, encoded = _encoded(image)
        tokens, picture_HW3 = encoded.tokens, picture.image
        report["psnr"] = round(encoded.psnr, 2)
    result = dependency.dependency_map(loaded.transformer, tokens, cell, class_id)
    info = result.information
    near = abs(np.indices((grid, grid)) - np.array(cell)[:, None, None]).max(0)
    report = {"method": "model", "cell": list(cell), "class": class_id,
              "mean_prior_entropy": round(float(result.prior_entropy.mean()), 4),
              "mean_entropy": round(float(result.entropy.mean()), 4),
              "information_neighbours": round(float(info[near == 1].mean()), 4),
              "information_far": round(float(info[near >= 4].mean()), 4),
              "information_by_distance": _rings(cell, info),
              **report, "entropy": _nats(result.entropy),
              "prior_entropy": _nats(result.prior_entropy)}
    return _image(np.asarray(draw_dependency(result, picture_HW3))), json.dumps(report)


def _filled_in(fn, replacements: dict[str, str]):
    for placeholder, text in replacements.items():
        fn.__doc__ = fn.__doc__.replace(placeholder, text)
    return fn


ORDERING_HELP = ("cells generated together: distant (PAR: far apart), raster (neighbours), "
                 "random; or a rival with step sizes of its own: zipar (row by row, a row "
                 "starting once the row above has `window` tokens), diagonal (row + col = step), "
                 "random-cosine (a random order in `steps` growing steps)")

TOOLS = (  # (tool, its concurrency group); a tool's name is its function's
    (_filled_in(generate_image, {"CLASSES": _class_list(DEFAULT_MODEL),
                                 "ORDERING_HELP": ORDERING_HELP}), MODEL_QUEUE),
    (_filled_in(compare_orderings, {"HEADERS": ", ".join(COMPARE_HEADERS)}), MODEL_QUEUE),
    (_filled_in(schedule_figure, {"ORDERING_HELP": ORDERING_HELP}), FIGURE_QUEUE),
    (edit_image, MODEL_QUEUE),
    (_filled_in(dependency_map, {"PICTURES": str(len(TrainingCodes.load())),
                                 "HELDOUT": str(len(_heldout())),
                                 "LAST_HELDOUT": str(len(_heldout()) - 1)}), MODEL_QUEUE),
)


async def _every_output(self, job) -> list:
    """Each output of a queued tool as its own content item (the picture, then the text).
    Gradio 6.31 puts the whole result in one text item when the client asked for no progress
    notifications, as most clients do; gradio_client returns several outputs as a tuple."""
    result = await run_sync(job.result)
    return list(result) if isinstance(result, tuple) else [result]


def register_mcp_tools(api_visibility: str = "public") -> None:
    """Register the tools in the current gr.Blocks context (HTTP endpoints of the same names)."""
    GradioMCPServer._execute_tool_without_progress = _every_output
    for fn, concurrency_id in TOOLS:
        gr.api(fn, api_name=fn.__name__, concurrency_id=concurrency_id,
               api_visibility=api_visibility)
