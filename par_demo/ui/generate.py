"""The Generate tab: one run streamed step by step, its replay, Stop and its exports; the
layout, the events and the dataclasses each event returns (fields named after the components
they update)."""
from __future__ import annotations

import time
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import gradio as gr

from par_demo.cpu_cost import CPU_COSTS
from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.ui import api_docs, views, widgets as w
from par_demo.ui.cpu_lane import CPU_LANE
from par_demo.ui.errors import friendly
from par_demo.ui.export import export_run, require_run
from par_demo.ui.inputs import (DEFAULT_STEPS, DEFAULT_WINDOW, GENERATE_ORDERS, PARALLEL_CHOICES,
                                boolean,
                                frame_ms as checked_frame_ms, plan_run, run_schedule)
from par_demo.ui.machine import availability
from par_demo.ui.runs import RunRecord, RunViews, generation_stream
from par_demo.ui.session import stoppable
from par_demo.ui.single_run import (Refused, Replayed, Stopped, refused, replay, stop_report,
                                    stop_run)

TITLE, TAB_ID = "Generate", "generate"

EXAMPLES = [  # class, parallelism, ordering, initial tokens, guidance, temperature, top-k,
    # seed, window, steps, label
    ("grinning face", 4, "distant", True, 4.0, 0.9, 0, 0, 3, 67, "PAR distant 4x"),
    ("grinning face", 1, "raster", False, 4.0, 0.9, 0, 0, 3, 67, "raster 1x (baseline)"),
    ("red apple", 16, "distant", True, 4.0, 0.9, 0, 7, 3, 67, "PAR distant 16x"),
    ("red apple", 16, "raster", True, 4.0, 0.9, 0, 7, 3, 67, "raster 16x (naive)"),
    ("owl", 4, "distant", False, 4.0, 0.9, 0, 3, 3, 67, "distant 4x, no initial tokens"),
    ("ambulance", 1, "zipar", True, 4.0, 0.9, 0, 0, 3, 67, "ZipAR, window 3 (74 steps)"),
]


# ---------------------------------------------------------------- controls

@dataclass
class ModelChange:
    klass: Any
    cfg: Any
    parallel: Any = w.skip()
    order: Any = w.skip()
    init: Any = w.skip()
    note: Any = w.skip()


def model_changed(model: str, current_class) -> ModelChange:
    """New model: its classes, its guidance default, and its schedule (locked when it runs one)."""
    preset = get_preset(model)
    change = ModelChange(w.class_update(model, current_class),
                         gr.update(value=preset.sampling.cfg_scale), note=w.model_note(model))
    r = preset.runs
    if r is None:
        change.parallel, change.order = gr.update(interactive=True), gr.update(interactive=True)
        change.init = gr.update()
    else:
        change.parallel = gr.update(value=r.parallel, interactive=False)
        change.order = gr.update(value=r.order if r.order in ("distant", "raster") else "distant",
                                 interactive=bool(preset.training_free))
        change.init = gr.update(value=r.init_tokens, interactive=False)
    return change


@dataclass
class RunCheck:
    check: str  # the schedule's step count, or why it cannot run
    run_button: Any
    init: Any
    window: Any = w.skip()
    steps: Any = w.skip()


def generate_check(model: str, parallel, order, init_tokens, window=DEFAULT_WINDOW,
                   steps=DEFAULT_STEPS) -> RunCheck:
    """Whether the Generate button can run this combination; if not, it is disabled and the
    reason shown. Also: the initial-token switch means nothing at 1x, and the window and the
    steps show for the orders they belong to."""
    shown = dict(window=gr.update(visible=order == "zipar"),
                 steps=gr.update(visible=order == "random-cosine"))
    try:
        preset, schedule = run_schedule(model, parallel, order, init_tokens, window, steps)
    except gr.Error as err:
        return RunCheck(f"✗ {err.message}",
                        gr.update(interactive=False, value="Generate (unavailable)"),
                        gr.update(interactive=False), **shown)
    text = f"{schedule.spec.label}: " + views.steps_text(schedule)
    return RunCheck(text, gr.update(interactive=True, value="Generate"),
                    gr.update(interactive=preset.runs is None and schedule.spec.parallel > 1),
                    **shown)


# ---------------------------------------------------------------- a run

@dataclass
class GenerateOut:
    pictures: RunViews | None = w.skip()
    status: Any = w.skip()
    details: Any = w.skip()
    run: RunRecord | None = None
    timings: dict = field(default_factory=dict)


@friendly
def generate(model, class_name, parallel, order, init_tokens, cfg, temperature, top_k, seed,
             window=DEFAULT_WINDOW, steps=DEFAULT_STEPS, timings=None,
             request: gr.Request = None):
    """Stream one generation, one GenerateOut per frame, until done or stopped."""
    plan = plan_run(model, class_name, parallel, order, init_tokens, cfg, temperature, top_k,
                    seed, window, steps)
    started = time.perf_counter()
    timings = dict(timings or {})
    baseline = timings.get(plan.model)
    estimate = cpu_estimate(plan.model)
    expected = f" (about {estimate:.0f} s on this CPU)" if estimate else ""
    ticket = CPU_LANE.join() if estimate else None  # released models on a CPU: one at a time
    try:
        position = 0 if ticket is None else CPU_LANE.position(ticket)
        while position:
            yield GenerateOut(status=f"Waiting for the CPU: {position} released-model "
                              f"run{'s' if position > 1 else ''} ahead of yours (one runs at a "
                              "time, on every core) …", timings=timings)
            position = CPU_LANE.wait(ticket, timeout=1.0)
        yield GenerateOut(status=f"Starting {plan.schedule.spec.label} for {plan.class_label}, "
                          f"seed {plan.config.seed}{expected} …", timings=timings)
        with CPU_LANE.all_cores() if ticket is not None else nullcontext(), \
                closing(stoppable(generation_stream(plan), w.session_of(request))) as frames:
            for (record, pictures), stopped in frames:
                if stopped:
                    report = stop_report(record)
                    yield GenerateOut(pictures, report.status, report.details, record, timings)
                else:
                    yield _frame(plan, record, pictures, baseline, timings,
                                 time.perf_counter() - started, estimate)
    finally:
        if ticket is not None:
            CPU_LANE.leave(ticket)


def cpu_estimate(model: str) -> float | None:
    """The image time a released model's CPU run is expected to take; None off the CPU path."""
    state = availability()[get_preset(model).name]
    return CPU_COSTS.cost(state.preset).image_seconds if state.on_cpu else None


def _frame(plan, record: RunRecord, pictures: RunViews, baseline, timings,
           wall: float, estimate: float | None) -> GenerateOut:
    schedule = plan.schedule
    if record.complete:
        if schedule.one_token_per_step:
            timings[plan.model] = record.elapsed
        if estimate:
            CPU_COSTS.remember_run(get_preset(plan.model), record.elapsed)
        status = views.done_line(schedule, record.elapsed, baseline, wall, record.device,
                                 record.cold, estimate) + f" · seed {record.config.seed}"
    else:
        status = views.live_line(schedule, record.steps_done - 1, record.step_seconds[-1],
                                 record.elapsed)
    return GenerateOut(pictures, status, record.summary(), record, timings)


@friendly
def export_run_files(record, overlay, frame_ms, request: gr.Request = None) -> w.ExportOut:
    """GIF and MP4 of the last run."""
    require_run(record)  # refused here, before asking for a GPU
    overlay, frame_ms = boolean(overlay, "overlay"), checked_frame_ms(frame_ms)
    done = export_run(record, overlay, frame_ms, w.session_of(request))
    note = (f"{w.frames_text(done, 'step')}, {frame_ms} ms each, "
            f"{'with' if overlay else 'without'} the Figure 3 overlay.")
    return w.ExportOut.of(done, note)


# ---------------------------------------------------------------- the tab

def build(page: SimpleNamespace) -> SimpleNamespace:
    """The Generate tab and its events; `runs` are the events that finish a generation."""
    g = SimpleNamespace(timings=page.timings, run=gr.State(None, time_to_live=w.RUN_KEEP_SECONDS))
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            g.model = w.model_dropdown("gen-model")
            g.note = gr.Markdown(w.model_note(DEFAULT_MODEL), elem_classes=["par-reason"],
                                 elem_id="gen-model-note")
            g.klass = w.class_dropdown("gen-class", info="Type to search; an index or a name")
            g.parallel = gr.Radio([(f"{p}x", p) for p in PARALLEL_CHOICES], value=4,
                                  label="Parallelism (tokens per step)",
                                  elem_id="gen-parallel")
            g.order = gr.Radio(list(GENERATE_ORDERS), value="distant", label="Ordering",
                               elem_id="gen-order")
            # no info line: the five orderings take a second row and Generate stays in view
            g.init = gr.Checkbox(value=True, label="Sequential initial tokens (stage 1)")
            g.window, g.steps = w.rival_sliders("gen")
            stop = w.run_controls("gen", g, "Generate",
                                  generate_check(DEFAULT_MODEL, 4, "distant", True).check,
                                  new_seed=True)
        with gr.Column(scale=3):
            g.status = gr.Markdown("Press **Generate** to watch an image being made.",
                                   label="Status", elem_classes=["par-status"],
                                   elem_id="gen-status")
            g.step = w.replay_slider("gen-step")
            with gr.Row():  # named as RunViews' fields
                g.image = w.image("Image so far (pending cells masked)", elem_id="gen-image")
                g.entropy = w.image("Uncertainty: entropy of each token", elem_id="gen-entropy")
            with gr.Row():
                g.overlay = w.image("Figure 3 overlay: which step made each cell",
                                    elem_id="gen-overlay")
                g.tokens = w.image("Token grid (colour = token id)", elem_id="gen-grid")
            g.record = w.record_row("gen", "export", export_run_files, g.run)
            with gr.Accordion("Run details", open=False):
                g.details = gr.JSON(label="Run details")
    inputs = [g.model, g.klass, g.parallel, g.order, g.init, g.cfg, g.temperature, g.top_k,
              g.seed, g.window, g.steps]
    examples = gr.Examples(
        [[DEFAULT_MODEL, w.class_label(DEFAULT_MODEL, r[0]), *r[1:10]] for r in EXAMPLES],
        inputs=inputs, cache_examples=False, label="Examples: click to run",
        example_labels=[f"{w.class_label(DEFAULT_MODEL, r[0]).split(': ', 1)[1]} · {r[10]}"
                        for r in EXAMPLES])

    w.on(g.model.change, model_changed, [g.model, g.klass], g, ModelChange, **w.UI)
    checked = (g.model, g.parallel, g.order, g.init, g.window, g.steps)
    w.on(gr.on, generate_check, list(checked), g, RunCheck,
         triggers=[c.change for c in checked], **w.UI)
    starts = (g.run_button.click, examples.load_input_event.then)
    for start in starts:  # registered before the run: the page starts these first
        w.on(start, w.reset_downloads, None, g.record, w.ExportOut, **w.UI)
        w.on(start, w.replay_off, None, g, w.ReplayRange, **w.UI)
        w.bring_into_view(start, "gen-status")
    # a click draws its seed first (when the switch is on); the API's /generate takes it as given
    seeded = g.run_button.click(w.next_seed, [g.new_seed, g.seed], g.seed, **w.UI)
    g.runs = [w.on(seeded.then, generate, inputs + [g.timings], g, GenerateOut,
                   api_name="generate", api_description=api_docs.GENERATE,
                   show_progress="minimal", **w.SCRIPTED, **w.RUN),
              w.on(examples.load_input_event.then, generate, inputs + [g.timings], g,
                   GenerateOut, api_visibility="private", show_progress="minimal", **w.RUN)]
    stopped = w.on(stop.click, stop_run, None, g, Stopped, cancels=g.runs, api_name="stop",
                   queue=False, **w.SCRIPTED)
    for done in g.runs + [stopped]:
        w.on(done.success, w.replay_range, g.run, g, w.ReplayRange, **w.UI)
    for run in g.runs:
        w.on(run.failure, refused, None, g, Refused, **w.UI)
    w.on(g.step.input, replay, [g.run, g.step], g, Replayed, trigger_mode="always_last",
         api_visibility="private", concurrency_id="replay", concurrency_limit=4)
    return g
