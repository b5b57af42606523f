"""The MCP tools (`launch(mcp_server=True)` serves them at /gradio_api/mcp/): typed, stateless
functions registered with gr.api, so each tool's schema comes from its type hints and its text
from its docstring. Each call reads its values with the page's strict readers (inputs.py), runs
through the page's queue (the model tools share the page's "model" concurrency group) and
returns its files itself: MCP calls carry no session to keep a run in."""
import json
import math
import time
from collections import deque
from dataclasses import replace
from typing import Literal

import gradio as gr
from anyio.to_thread import run_sync
from gradio.mcp import GradioMCPServer

from par_demo.orders import ORDERS, ScheduleSpec
from par_demo.presets import DEFAULT_MODEL, PRESETS, ModelPreset, UnsupportedSchedule
from par_demo.ui import explorer, inputs, views
from par_demo.ui.errors import fail, friendly
from par_demo.ui.files import FILES
from par_demo.ui.inputs import COMPARE_ORDERINGS, RunPlan, plan_compare
from par_demo.ui.runs import COMPARE_HEADERS, compare_stream, compare_table, generation_stream

ModelName = Literal[tuple(PRESETS)]
Parallelism = Literal[inputs.PARALLEL_CHOICES]
Ordering = Literal[ORDERS]
CompareOrdering = Literal[tuple(COMPARE_ORDERINGS)]


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
                   model: ModelName = DEFAULT_MODEL) -> tuple[gr.FileData, str]:
    """Generate one image with PAR (parallelized autoregressive generation) and report how many
    steps it took; the same arguments always give the same picture. Returns the final picture
    (PNG) and a JSON text: steps, tokens_per_step_max, seconds (model time: the steps alone),
    wall_seconds (start to done), device, step_path and the settings used. The embedded model's
    classes: CLASSES.

    Args:
        class_name: what to draw: a class name (or part of one) or its index
        parallelism: tokens generated per step (1: one at a time, the baseline)
        ordering: cells generated together: distant (PAR: far apart), raster (neighbours), random
        initial_tokens: the first token of each region one at a time, before the rest (PAR stage 1)
        seed: random seed, 0..2147483647
        model: the model; only the embedded one runs without a GPU
    """
    started = time.perf_counter()
    preset = inputs.usable_preset(model)
    spec = ScheduleSpec(grid=preset.args.grid, order=inputs.choice(ordering, "ordering", ORDERS),
                        parallel=inputs.parallelism(parallelism),
                        init_tokens=inputs.boolean(initial_tokens, "initial tokens"))
    schedule = _runnable(preset, spec)
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
        model: the model; only the embedded one runs without a GPU
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
                    ordering: Ordering = "distant",
                    initial_tokens: bool = True) -> tuple[gr.FileData, str]:
    """Draw the paper's Figure 3 for a schedule: the step at which each token of a grid x grid
    image is generated; needs no model. Returns the figure (PNG) and a JSON text: steps, tokens,
    speedup_in_steps (tokens / steps) and a description.

    Args:
        grid: tokens per side, 2..32 (the embedded model's is 16, the released models' 24)
        parallelism: tokens generated per step
        ordering: cells generated together: distant (PAR: far apart), raster (neighbours), random
        initial_tokens: the first token of each region one at a time, before the rest (PAR stage 1)
    """
    schedule = explorer.explored_schedule(grid, parallelism, ordering, initial_tokens)
    image, text, steps = explorer.schedule_figure(grid, parallelism, ordering, initial_tokens)
    report = {"steps": steps, "tokens": schedule.grid ** 2,
              "speedup_in_steps": round(views.speedup_steps(schedule), 4), "description": text}
    return _image(image), json.dumps(report)


def _filled_in(fn, replacements: dict[str, str]):
    for placeholder, text in replacements.items():
        fn.__doc__ = fn.__doc__.replace(placeholder, text)
    return fn


TOOLS = (  # (tool, its concurrency group); a tool's name is its function's
    (_filled_in(generate_image, {"CLASSES": _class_list(DEFAULT_MODEL)}), MODEL_QUEUE),
    (_filled_in(compare_orderings, {"HEADERS": ", ".join(COMPARE_HEADERS)}), MODEL_QUEUE),
    (schedule_figure, FIGURE_QUEUE),
)


async def _every_output(self, job) -> list:
    """Each output of a queued tool as its own content item (the picture, then the text).
    Gradio 6.31 puts the whole result in one text item when the client asked for no progress
    notifications, as most clients do; gradio_client returns several outputs as a tuple."""
    result = await run_sync(job.result)
    return list(result) if isinstance(result, tuple) else [result]


def register_mcp_tools() -> None:
    """Register the tools in the current gr.Blocks context (HTTP endpoints of the same names)."""
    GradioMCPServer._execute_tool_without_progress = _every_output
    for fn, concurrency_id in TOOLS:
        gr.api(fn, api_name=fn.__name__, concurrency_id=concurrency_id)
