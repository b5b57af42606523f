"""The functions behind the page's events. Each takes the components' values and returns (or
yields) a dataclass of their new values, field by field named after the components it updates
(layout.py wires fields to components by name), so the page, gradio_client and tests all call
the same code."""
from __future__ import annotations

import logging
import random
import time
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from par_demo.classes import ClassError
from par_demo.presets import get_preset
from par_demo.ui import views
from par_demo.ui.errors import fail, friendly
from par_demo.ui.explorer import (schedule_animation, schedule_figure, schedule_progress,
                                  uncertainty_views)
from par_demo.ui.export import export_compare, export_run, require_comparison, require_run
from par_demo.ui.inputs import SEED_RANGE, boolean, frame_ms as checked_frame_ms, number
from par_demo.ui.machine import availability
from par_demo.ui.session import RUNS
from par_demo.ui.runs import (RunRecord, compare_schedules, compare_stream,
                              compare_table, generation_stream, plan_compare, plan_run,
                              replay_compare, replay_views, run_schedule)

DEFAULT_CLASS = "heart"  # the embedded model's; other models start at class 0
log = logging.getLogger("par_demo.ui")


def _skip() -> Any:
    return field(default_factory=gr.skip)


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


# ---------------------------------------------------------------- controls

def class_choices(model: str) -> list[str]:
    names = get_preset(model).class_names()
    return [names.label(i) for i in range(len(names))]


def class_label(model: str, query) -> str:
    """The dropdown label of a class given by name or index; class 0 if it does not resolve."""
    names = get_preset(model).class_names()
    try:
        return names.label(names.resolve(query))
    except ClassError:
        return names.label(0)


def default_class(model: str) -> str:
    return class_label(model, DEFAULT_CLASS)


def model_note(model: str) -> str:
    state = availability()[get_preset(model).name]
    p = state.preset
    runs = "runs any ordering" if p.runs is None else f"runs only {p.runs.label}"
    text = (f"{p.description} · {p.args.grid}×{p.args.grid} tokens → {p.image_size} px · "
            f"{len(p.class_names())} classes · {runs}")
    if state.reason:
        text += f"\n\n✗ **Unavailable here:** {state.reason}"
    return text


def _class_update(model: str, current_class):
    """The new model's classes, keeping the current one when the model has a class of that name."""
    names = get_preset(model).class_names()
    text = str(current_class or "")
    name = text.split(": ", 1)[1] if ": " in text else text  # "4: heart" -> "heart"
    try:
        keep = names.label(names.resolve(name))
    except ClassError:
        keep = default_class(model)
    return gr.update(choices=class_choices(model), value=keep)


@dataclass
class ModelChange:
    klass: Any
    cfg: Any
    parallel: Any = _skip()
    order: Any = _skip()
    init: Any = _skip()
    note: Any = _skip()


def model_changed(model: str, current_class) -> ModelChange:
    """New model: its classes, its guidance default, and its schedule (locked when it runs one)."""
    preset = get_preset(model)
    change = ModelChange(_class_update(model, current_class),
                         gr.update(value=preset.sampling.cfg_scale), note=model_note(model))
    r = preset.runs
    if r is None:
        change.parallel, change.order = gr.update(interactive=True), gr.update(interactive=True)
        change.init = gr.update()
    else:
        change.parallel = gr.update(value=r.parallel, interactive=False)
        change.order = gr.update(value=r.order if r.order in ("distant", "raster") else "distant",
                                 interactive=False)
        change.init = gr.update(value=r.init_tokens, interactive=False)
    return change


@dataclass
class CompareModelChange:
    klass: Any
    cfg: Any


def compare_model_changed(model: str, current_class) -> CompareModelChange:
    return CompareModelChange(_class_update(model, current_class),
                              gr.update(value=get_preset(model).sampling.cfg_scale))


@dataclass
class RunCheck:
    check: str  # the schedule's step count, or why it cannot run
    run_button: Any
    init: Any


def generate_check(model: str, parallel, order, init_tokens) -> RunCheck:
    """Whether the Generate button can run this combination; if not, it is disabled and the
    reason shown. Also: the initial-token switch means nothing at 1x."""
    try:
        preset, schedule = run_schedule(model, parallel, order, init_tokens)
    except gr.Error as err:
        return RunCheck(f"✗ {err.message}",
                        gr.update(interactive=False, value="Generate (unavailable)"),
                        gr.update(interactive=False))
    text = (f"{schedule.spec.label}: {schedule.num_steps} steps · "
            + views.speedup_text(schedule))
    return RunCheck(text, gr.update(interactive=True, value="Generate"),
                    gr.update(interactive=preset.runs is None and schedule.spec.parallel > 1))


@dataclass
class CompareCheck:
    check: str  # each ordering's step count, or why they cannot be compared
    run_button: Any


def compare_check(model: str, orderings) -> CompareCheck:
    try:
        _, keys, schedules = compare_schedules(model, orderings)
    except gr.Error as err:
        return CompareCheck(f"✗ {err.message}", gr.update(interactive=False))
    text = " · ".join(f"{k}: {s.num_steps} steps" for k, s in zip(keys, schedules))
    return CompareCheck(text, gr.update(interactive=True))


def random_seed() -> int:
    return random.SystemRandom().randint(*SEED_RANGE)


# ---------------------------------------------------------------- generate

@dataclass
class GenerateOut:
    image: Any = _skip()
    overlay: Any = _skip()
    tokens: Any = _skip()
    entropy: Any = _skip()
    status: Any = _skip()
    details: Any = _skip()
    run: RunRecord | None = None
    timings: dict = field(default_factory=dict)


@friendly
def generate(model, class_query, parallel, order, init_tokens, cfg, temperature, top_k, seed,
             timings, request: gr.Request = None):
    """Stream one generation, one GenerateOut per frame, until done or stopped."""
    plan = plan_run(model, class_query, parallel, order, init_tokens, cfg, temperature, top_k,
                    seed)
    started = time.perf_counter()
    timings = dict(timings or {})
    baseline = timings.get(plan.model)
    schedule = plan.schedule
    yield GenerateOut(status=f"Starting {schedule.spec.label} for {plan.class_label} …",
                      timings=timings)
    with closing(_stoppable(generation_stream(plan), request)) as frames:
        for (record, v), stopped in frames:
            if stopped:
                report = stop_report(record)
                yield GenerateOut(v.image, v.overlay, v.tokens, v.entropy, report.status,
                                  report.details, record, timings)
            else:
                yield _generate_frame(plan, record, v, baseline, timings,
                                      time.perf_counter() - started)


def _steps(run: RunRecord | list[RunRecord] | None) -> str:
    records = [run] if isinstance(run, RunRecord) else list(run or [])
    return ", ".join(f"{r.steps_done} of {r.num_steps} ({r.label})" for r in records) or "0"


def _stoppable(stream, request: gr.Request | None):
    """(item, stopped) for each (record or records, picture) of a run's stream. Once the
    caller's Stop arrives, the run is closed between two frames and its last item comes with
    stopped=True. Each run's end is logged: finished, stopped or cancelled."""
    session = _session(request)
    running = RUNS.start(session)
    try:
        for item in stream:
            running.last = item[0]
            records = item[0] if isinstance(item[0], list) else [item[0]]
            if running.stop.is_set() and not all(r.complete for r in records):
                stream.close()
                log.info("run stopped after step %s", _steps(item[0]))
                yield item, True
                return
            yield item, False
        log.info("run finished after step %s", _steps(running.last))
    except GeneratorExit:  # cancelled by Gradio: the page's Stop, a client's job.cancel()
        log.info("run cancelled after step %s", _steps(running.last))
        raise
    finally:
        stream.close()
        RUNS.end(session, running)


def _generate_frame(plan, record: RunRecord, v, baseline, timings, wall: float) -> GenerateOut:
    schedule = plan.schedule
    if record.complete:
        if schedule.spec.parallel == 1:
            timings[plan.model] = record.elapsed
        status = views.done_line(schedule, record.elapsed, baseline, wall, record.device,
                                 record.cold)
    else:
        status = views.live_line(schedule, record.steps_done - 1, record.step_seconds[-1],
                                 record.elapsed)
    return GenerateOut(v.image, v.overlay, v.tokens, v.entropy, status, record.summary(),
                       record, timings)


@dataclass
class Stopped:
    status: Any = _skip()
    details: Any = _skip()


def stop_report(record: RunRecord | None) -> Stopped:
    if record is None:
        return Stopped(views.stopped_line(None, 0, 0.0))
    return Stopped(views.stopped_line(record.schedule, record.steps_done, record.elapsed),
                   record.summary() | {"stopped": True})


def stop_run(record: RunRecord | None, request: gr.Request = None) -> Stopped:
    """Stop (the button or /stop): ends the caller's runs and reports where the run ended."""
    ended = [r.last for r in RUNS.stop(_session(request)) if isinstance(r.last, RunRecord)]
    record = ended[-1] if ended else record
    if record is not None and record.complete:
        return Stopped()
    return stop_report(record)


@dataclass
class Refused:
    """A refused request leaves no pictures of an earlier run standing as if they were its own."""
    image: Any = None
    overlay: Any = None
    tokens: Any = None
    entropy: Any = None
    status: Any = ("✗ **Not run**: the request was refused (the message says why). The "
                   "previous run's pictures are cleared.")
    details: Any = None
    run: Any = None
    step: Any = field(default_factory=lambda: gr.update(interactive=False))


def refused() -> Refused:
    return Refused()


# ---------------------------------------------------------------- replay

REPLAY_LABEL = "Replay: step (drag to see every recorded step)"


@dataclass
class ReplayRange:
    step: Any


def replay_off() -> ReplayRange:
    """While a run streams, the slider waits."""
    return ReplayRange(gr.update(interactive=False, label=f"{REPLAY_LABEL}: after this run"))


def replay_range(run: RunRecord | list[RunRecord] | None) -> ReplayRange:
    """After a run: the slider spans its recorded steps (a comparison's: its step clock) and
    stands on the last."""
    records = [run] if isinstance(run, RunRecord) else list(run or [])
    if not records or not all(r.tokens for r in records):
        return ReplayRange(gr.update(interactive=False))
    last = max(r.steps_done for r in records)
    return ReplayRange(gr.update(minimum=1, maximum=max(last, 2), value=last, interactive=True,
                                 label=f"{REPLAY_LABEL}: 1 to {last}"))


@dataclass
class Replayed:
    image: Any
    overlay: Any
    tokens: Any
    entropy: Any


@friendly
def replay(record: RunRecord | None, step) -> Replayed:
    """The run's pictures after `step` (1-based), as they streamed."""
    if not isinstance(record, RunRecord) or not record.tokens:
        fail("generate an image first; the slider replays its steps", title="Nothing to replay")
    step = number(step, "step", 1, max(record.steps_done, 2), integer=True)
    v = replay_views(record, min(step, record.steps_done) - 1)
    return Replayed(v.image, v.overlay, v.tokens, v.entropy)


@dataclass
class ReplayedCompare:
    frame: Any


@friendly
def replay_comparison(records, overlay, tick) -> ReplayedCompare:
    """Every panel after step clock `tick` (1-based); finished panels hold their last step."""
    if not records or not all(r.tokens for r in records):
        fail("run a comparison first; the slider replays its steps", title="Nothing to replay")
    last = max(r.steps_done for r in records)
    tick = number(tick, "step", 1, max(last, 2), integer=True)
    return ReplayedCompare(replay_compare(records, boolean(overlay, "overlay"),
                                          min(tick, last) - 1))


@dataclass
class ExportOut:
    gif: Any
    mp4: Any
    animation: Any
    note: Any


def reset_downloads() -> ExportOut:
    """A new run makes the previous files stale: empty and disable the download buttons."""
    off = gr.update(value=None, interactive=False)
    return ExportOut(off, off, None, "")


@dataclass
class Downloads:
    gif: Any
    mp4: Any


def enable_downloads() -> Downloads:
    return Downloads(gr.update(interactive=True), gr.update(interactive=True))


def _frames_text(done, per: str) -> str:
    if done.frames == done.steps:
        return f"{done.frames} frames (one per {per})"
    return f"{done.frames} frames spread over {done.steps} steps (the first and last kept)"


@friendly
def export_run_files(record, overlay, frame_ms, request: gr.Request = None) -> ExportOut:
    """GIF and MP4 of the last run."""
    require_run(record)  # refused here, before asking for a GPU
    overlay, frame_ms = boolean(overlay, "overlay"), checked_frame_ms(frame_ms)
    done = export_run(record, overlay, frame_ms, _session(request))
    note = (f"{_frames_text(done, 'step')}, {frame_ms} ms each, "
            f"{'with' if overlay else 'without'} the Figure 3 overlay.")
    return ExportOut(str(done.gif), str(done.mp4), str(done.gif), note)


# ---------------------------------------------------------------- compare

def _compare_status(records, finished: bool, wall: float) -> str:
    if finished:
        ones = [r for r in records if r.spec.parallel == 1]
        fastest = min(records, key=lambda r: r.num_steps)
        text = "✓ **Done.** " + " · ".join(
            f"{r.label}: {r.num_steps} steps, {r.elapsed:.2f} s" for r in records)
        if ones and fastest is not ones[0]:
            text += (f" · {fastest.label} needed {ones[0].num_steps / fastest.num_steps:.2f}× "
                     f"fewer steps than {ones[0].label}")
        return text + "  \n" + views.timing_text(sum(r.elapsed for r in records), wall,
                                                  records[0].device, records[0].cold)
    clock = max(r.steps_done for r in records)
    return f"Step clock **{clock}** · " + " · ".join(
        f"{r.label} {'✓' if r.complete else f'{r.steps_done}/{r.num_steps}'}" for r in records)


@dataclass
class CompareOut:
    frame: Any = _skip()
    table: Any = _skip()
    status: Any = _skip()
    records: list[RunRecord] | None = None


@friendly
def compare(model, class_query, orderings, overlay, cfg, temperature, top_k, seed, timings,
            request: gr.Request = None):
    """Stream a comparison, one CompareOut per frame, until done or stopped."""
    started = time.perf_counter()
    plan = plan_compare(model, class_query, orderings, cfg, temperature, top_k, seed)
    overlay = boolean(overlay, "overlay")
    baseline = (timings or {}).get(plan.model)
    yield CompareOut(status=f"Starting {len(plan.keys)} orderings for {plan.class_label} …")
    with closing(_stoppable(compare_stream(plan, overlay), request)) as frames:
        for (records, frame), stopped in frames:
            if stopped:
                yield CompareOut(status=_compare_stopped_line(records), records=records)
            else:
                finished = all(r.complete for r in records)
                yield CompareOut(frame, compare_table(records, baseline),
                                 _compare_status(records, finished,
                                                 time.perf_counter() - started), records)


def _compare_stopped_line(records: list[RunRecord]) -> str:
    clock = max(r.steps_done for r in records)
    where = " · ".join(f"{r.label} {'✓' if r.complete else f'{r.steps_done}/{r.num_steps}'}"
                       for r in records)
    return (f"■ Stopped at step {clock} of {max(r.num_steps for r in records)} of the step "
            f"clock: {where}. Replay its steps with the slider, or export the partial "
            "comparison.")


@dataclass
class CompareRefused:
    frame: Any = None
    table: Any = None
    status: Any = ("✗ **Not compared**: the request was refused (the message says why). The "
                   "previous comparison is cleared.")
    records: Any = None
    step: Any = field(default_factory=lambda: gr.update(interactive=False))


def compare_refused() -> CompareRefused:
    return CompareRefused()


def compare_stopped(request: gr.Request = None):
    """Stop on Compare: ends the caller's runs and reports where the comparison ended."""
    ended = [r.last for r in RUNS.stop(_session(request)) if isinstance(r.last, list)]
    if not ended or all(r.complete for r in ended[-1]):
        return gr.skip()
    return _compare_stopped_line(ended[-1])


@friendly
def export_compare_files(records, overlay, frame_ms, request: gr.Request = None) -> ExportOut:
    require_comparison(records)
    overlay, frame_ms = boolean(overlay, "overlay"), checked_frame_ms(frame_ms)
    done = export_compare(records, overlay, frame_ms, _session(request))
    note = (f"{_frames_text(done, 'tick of the step clock')}: all panels on one step clock, "
            f"each holding its last frame when done; {frame_ms} ms each.")
    return ExportOut(str(done.gif), str(done.mp4), str(done.gif), note)


# ---------------------------------------------------------------- understand

@dataclass
class Explored:
    figure: Any
    text: Any
    step: Any
    progress: Any


@friendly
def explore(grid, parallel, order, init_tokens) -> Explored:
    image, text, num_steps = schedule_figure(grid, parallel, order, init_tokens)
    step = gr.update(maximum=max(num_steps, 2), value=1)
    return Explored(image, text, step,
                    schedule_progress(grid, parallel, order, init_tokens, 1))


def unexplored() -> Explored:
    """A schedule that cannot exist: nothing of the previous one stays up."""
    return Explored(None, "✗ No such schedule (the message says why).",
                    gr.update(value=1, maximum=2), None)


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
def explore_step(grid, parallel, order, init_tokens, step) -> Progress:
    return Progress(schedule_progress(grid, parallel, order, init_tokens, step))


@dataclass
class Animated:
    animation: Any


def no_animation() -> Animated:
    return Animated(None)


@friendly
def animate_schedule(grid, parallel, order, init_tokens, frame_ms,
                     request: gr.Request = None) -> Animated:
    return Animated(schedule_animation(grid, parallel, order, init_tokens, frame_ms,
                                       _session(request)))


@dataclass
class Uncertainty:
    map: Any
    chart: Any
    summary: Any


def uncertainty(record) -> Uncertainty:
    return Uncertainty(*uncertainty_views(record))
