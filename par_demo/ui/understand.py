"""The Understand tab: the paper's Figure 3 for any grid, parallelism and ordering (static, step
by step, animated) and the uncertainty of the last Generate run."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import gradio as gr

from par_demo.animation import FRAME_MS_RANGE
from par_demo.orders import ORDERS, PAR_ORDERS
from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.ui import widgets as w
from par_demo.ui.errors import InputError, friendly
from par_demo.ui.explorer import (NO_SCHEDULE, schedule_animation, schedule_figure, schedule_progress,
                                  uncertainty_views)
from par_demo.ui.inputs import (DEFAULT_STEPS, DEFAULT_WINDOW, GRID_RANGE, PARALLEL_CHOICES)

TITLE, TAB_ID = "Understand", "understand"

ENTROPY_TEXT = """
**Why uncertainty matters.** Tokens generated in the same step are sampled independently. Where
the model is sure (dark cells) that is harmless; where it is unsure (bright cells) two tokens
sampled together can disagree, and if they are neighbours the seam shows. This is why PAR
samples *distant*, weakly dependent tokens together and keeps the first tokens sequential: the
paper's Figures 9 and 11 explain it. The map shows, for each token, the entropy of the
distribution it was drawn from, at the step it was generated.
"""


@dataclass
class Explored:
    figure: Any
    text: Any
    step: Any
    progress: Any


@friendly
def explore(grid, parallel, order, init_tokens, window=DEFAULT_WINDOW,
            steps=DEFAULT_STEPS) -> Explored:
    """Figure 3 of these settings; settings no schedule can have (a grid its regions do not
    divide, a window wider than the grid) are explained in place, not refused: the page offers
    every grid."""
    try:
        image, text, num_steps = schedule_figure(grid, parallel, order, init_tokens, window,
                                                 steps)
    except InputError as err:
        if err.title != NO_SCHEDULE:
            raise
        return Explored(None, f"✗ **No such schedule**: {err.message}. Pick another grid, "
                        "parallelism or ordering (raster cuts any grid).",
                        gr.update(value=1, maximum=2), None)
    step = gr.update(maximum=max(num_steps, 2), value=1)
    return Explored(image, text, step,
                    schedule_progress(grid, parallel, order, init_tokens, 1, window, steps))


def unexplored() -> Explored:
    """A refused request (a bad value): nothing of the previous schedule stays up."""
    return Explored(None, "✗ No such schedule (the message says why).",
                    gr.update(value=1, maximum=2), None)


@dataclass
class OrderControls:
    parallel: Any
    init: Any
    window: Any
    steps: Any


def order_controls(order: str) -> OrderControls:
    """Each ordering's own controls: parallelism and initial tokens for PAR's orders, the window
    for zipar, the steps for random-cosine."""
    par = order in PAR_ORDERS
    return OrderControls(gr.update(interactive=par), gr.update(interactive=par),
                         gr.update(visible=order == "zipar"),
                         gr.update(visible=order == "random-cosine"))


@dataclass
class ExplorerGrid:
    grid: Any


def explorer_grid(model: str) -> ExplorerGrid:
    """The explorer follows the chosen model's token grid."""
    return ExplorerGrid(get_preset(model).args.grid)


@dataclass
class Progress:
    progress: Any


@friendly
def explore_step(grid, parallel, order, init_tokens, window, steps, step) -> Progress:
    try:
        return Progress(schedule_progress(grid, parallel, order, init_tokens, step, window,
                                          steps))
    except InputError as err:
        if err.title != NO_SCHEDULE:
            raise
        return Progress(None)  # explore() explains why


@dataclass
class Animated:
    animation: Any


@friendly
def follow_animation(grid, parallel, order, init_tokens, window, steps, frame_ms, shown,
                     request: gr.Request = None) -> Animated:
    """A shown animation follows the settings; none is made until Animate is pressed."""
    if not shown:
        return Animated(gr.skip())
    try:
        return animate_schedule(grid, parallel, order, init_tokens, window, steps, frame_ms,
                                request)
    except InputError as err:
        if err.title != NO_SCHEDULE:
            raise
        return Animated(None)


@friendly
def animate_schedule(grid, parallel, order, init_tokens, window, steps, frame_ms,
                     request: gr.Request = None) -> Animated:
    return Animated(schedule_animation(grid, parallel, order, init_tokens, frame_ms,
                                       w.session_of(request), window, steps))


@dataclass
class Uncertainty:
    map: Any
    chart: Any
    summary: Any


def uncertainty(record) -> Uncertainty:
    return Uncertainty(*uncertainty_views(record))


def build(page: SimpleNamespace) -> SimpleNamespace:
    u = SimpleNamespace()
    gr.Markdown("### Schedule explorer: the paper's Figure 3 for any grid")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            u.grid = gr.Slider(*GRID_RANGE, value=get_preset(DEFAULT_MODEL).args.grid, step=1,
                               label="Grid (tokens per side)")
            u.parallel = gr.Radio([(f"{p}x", p) for p in PARALLEL_CHOICES], value=4,
                                  label="Parallelism")
            u.order = gr.Radio(list(ORDERS), value="distant", label="Ordering")
            u.init = gr.Checkbox(value=True, label="Sequential initial tokens")
            u.window, u.steps = w.rival_sliders("sch")
            u.text = gr.Markdown(label="Schedule description", elem_id="par-understand-text")
        with gr.Column(scale=2):
            u.figure = w.image("Figure 3: step of each token", elem_id="sch-figure")
        with gr.Column(scale=2):
            u.step = gr.Slider(1, 2, value=1, step=1, label="Step", elem_id="sch-step")
            u.progress = w.image("After this step (red: being generated)",
                                 elem_id="sch-progress")
            with gr.Row(equal_height=True):
                frame_ms = gr.Slider(*FRAME_MS_RANGE, value=150, step=10,
                                     label="Frame duration (ms)")
                animate = gr.Button("Animate", elem_id="sch-animate")
            u.animation = gr.Image(label="Animation (GIF)", type="filepath",
                                   interactive=False, elem_classes=["pixelated"])
    gr.Markdown("### Uncertainty of your last run")
    gr.Markdown(ENTROPY_TEXT)
    with gr.Row():
        u.map = w.image("Entropy of each token at the step it was generated", elem_id="unc-map")
        with gr.Column():
            gr.Markdown("**Mean entropy per step**", elem_classes=["par-caption"])
            u.chart = gr.Image(label="Mean entropy per step", show_label=False, type="numpy",
                               interactive=False, elem_id="unc-chart")
    u.summary = gr.Markdown("Generate an image first: its uncertainty appears here.")

    schedule = [u.grid, u.parallel, u.order, u.init, u.window, u.steps]
    ui = dict(concurrency_id="ui", preprocess=False, **w.SCRIPTED)
    explored = w.on(gr.on, explore, schedule, u, Explored, api_name="schedule",
                    concurrency_limit=8, triggers=[page.demo.load] + [c.change for c in schedule],
                    **ui)
    w.on(explored.failure, unexplored, None, u, Explored, **w.UI)
    w.on(u.order.change, order_controls, u.order, u, OrderControls, **w.UI)
    # a shown animation follows the settings (none is left up for a schedule that cannot exist)
    w.on(gr.on, follow_animation, schedule + [frame_ms, u.animation], u, Animated,
         triggers=[c.change for c in schedule], trigger_mode="always_last",
         concurrency_id="ui", preprocess=False, api_visibility="private")
    w.on(u.step.change, explore_step, schedule + [u.step], u, Progress,
         api_name="schedule_step", **ui)
    w.on(animate.click, animate_schedule, schedule + [frame_ms], u, Animated,
         api_name="schedule_animation", **ui)

    generate = page.tabs["generate"]  # follows the Generate tab: its model's grid, its runs
    w.on(generate.model.change, explorer_grid, generate.model, u, ExplorerGrid, **w.UI)
    for run in generate.runs:
        w.on(run.success, uncertainty, generate.run, u, Uncertainty, api_visibility="private")
    return u
