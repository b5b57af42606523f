"""The functions behind the page's events. Each takes the components' values and returns (or
yields) their new values, so the page, gradio_client and tests all call the same code."""
from __future__ import annotations

import random
from dataclasses import replace

import gradio as gr

from par_demo.presets import get_preset
from par_demo.classes import ClassError
from par_demo.orders import build_schedule
from par_demo.ui import views
from par_demo.ui.errors import friendly
from par_demo.ui.explorer import schedule_animation, uncertainty_views
from par_demo.ui.export import (check_frame_ms, export_compare, export_run, require_comparison,
                                require_run)
from par_demo.ui.models import availability
from par_demo.ui.runs import (COMPARE_ORDERINGS, RunRecord, compare_reason, compare_stream,
                              compare_table, generation_stream, plan_compare, plan_run,
                              schedule_spec)

DEFAULT_CLASS = "heart"  # the embedded model's; other models start at class 0


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
    elif state.random_weights:
        text += ("\n\n⚠ **Random weights** (untrained stand-in until the trained files ship): "
                 "its images are noise, but the schedules, timings and speedups are real.")
    return text


def model_changed(model: str, current_class):
    """New model: its classes, its guidance default, and its schedule (locked when it runs one)."""
    preset = get_preset(model)
    names = preset.class_names()
    text = str(current_class or "")
    name = text.split(": ", 1)[1] if ": " in text else text  # "4: heart" -> "heart"
    try:  # keep the class when the new model has one of that name
        keep = names.label(names.resolve(name))
    except ClassError:
        keep = default_class(model)
    locked = preset.runs is not None
    schedule_updates = []
    if locked:
        r = preset.runs
        schedule_updates = [gr.update(value=r.parallel, interactive=False),
                            gr.update(value=r.order if r.order in ("distant", "raster")
                                      else "distant", interactive=False),
                            gr.update(value=r.init_tokens, interactive=False)]
    else:
        schedule_updates = [gr.update(interactive=True), gr.update(interactive=True),
                            gr.update()]
    return (gr.update(choices=class_choices(model), value=keep),
            gr.update(value=preset.sampling.cfg_scale), *schedule_updates, model_note(model))


def compare_model_changed(model: str, current_class):
    class_update, cfg_update, *_ = model_changed(model, current_class)
    return class_update, cfg_update


def generate_check(model: str, parallel, order, init_tokens):
    """Whether the Generate button can run this combination; if not, it is disabled and the
    reason shown. Also: the initial-token switch means nothing at 1x."""
    preset = get_preset(model)
    state = availability()[preset.name]
    init_update = gr.update(interactive=preset.runs is None and int(parallel) > 1)
    reason = state.reason
    if reason is None:
        try:
            reason = preset.unsupported_reason(schedule_spec(preset, parallel, order, init_tokens))
        except gr.Error as err:
            reason = err.message
    if reason:
        return (f"✗ {reason}", gr.update(interactive=False, value="Generate (unavailable)"),
                init_update)
    spec = schedule_spec(preset, parallel, order, init_tokens)
    schedule = build_schedule(spec)
    text = f"{spec.label}: {schedule.num_steps} steps · " + views.speedup_text(schedule)
    return text, gr.update(interactive=True, value="Generate"), init_update


def compare_check(model: str, orderings):
    preset = get_preset(model)
    reason = availability()[preset.name].reason or compare_reason(preset, orderings)
    if reason:
        return f"✗ {reason}", gr.update(interactive=False)
    steps = [build_schedule(replace(COMPARE_ORDERINGS[k][1], grid=preset.args.grid)).num_steps
             for k in orderings]
    text = " · ".join(f"{k}: {n} steps" for k, n in zip(orderings, steps))
    return text, gr.update(interactive=True)


def random_seed() -> int:
    return random.SystemRandom().randint(0, 2**31 - 1)


# ---------------------------------------------------------------- generate

@friendly
def generate(model, class_query, parallel, order, init_tokens, cfg, temperature, top_k, seed,
             timings):
    """Stream one generation. Yields (image, overlay, token grid, entropy map, status line,
    details, run record, timings)."""
    plan = plan_run(model, class_query, parallel, order, init_tokens, cfg, temperature, top_k,
                    seed)
    timings = dict(timings or {})
    baseline = timings.get(plan.model)
    schedule = build_schedule(plan.spec)
    skip = gr.skip()
    yield (skip, skip, skip, skip,
           f"Starting {plan.spec.label} for {plan.class_label} …", skip, None, timings)
    for record, v in generation_stream(plan):
        if record.complete:
            if plan.spec.parallel == 1:
                timings[plan.model] = record.elapsed
            status = views.done_line(schedule, record.elapsed, baseline)
            if record.random_weights:
                status += f" · *{record.title}*"
        else:
            status = views.live_line(schedule, record.steps_done - 1, record.step_seconds[-1],
                                     record.elapsed)
        yield (v.image, v.overlay, v.tokens, v.entropy, status, record.summary(), record,
               timings)


def stop_run(record: RunRecord | None):
    """The Stop button: the run is cancelled by the event system; this reports where it ended."""
    if record is not None and record.complete:
        return gr.skip(), gr.skip()
    if record is None:
        return views.stopped_line(None, 0, 0.0), gr.skip()
    record.stopped = True
    summary = record.summary() | {"stopped": True}
    return views.stopped_line(record.schedule, record.steps_done, record.elapsed), summary


def reset_downloads():
    """A new run makes the previous files stale: empty and disable the download buttons."""
    off = gr.update(value=None, interactive=False)
    return off, off, None, ""


def enable_downloads():
    return gr.update(interactive=True), gr.update(interactive=True)


@friendly
def export_run_files(record, overlay, frame_ms, request: gr.Request = None):
    """GIF and MP4 of the last run. Returns (GIF path, MP4 path, GIF preview, note)."""
    require_run(record), check_frame_ms(frame_ms)  # refused here, before asking for a GPU
    done = export_run(record, overlay, frame_ms, _session(request))
    note = (f"{done.frames} frames (one per step{' done' if not record.complete else ''}), "
            f"{int(frame_ms)} ms each, {'with' if overlay else 'without'} the Figure 3 overlay.")
    return str(done.gif), str(done.mp4), str(done.gif), note


# ---------------------------------------------------------------- compare

def _compare_status(records, finished: bool) -> str:
    if finished:
        ones = [r for r in records if r.spec.parallel == 1]
        fastest = min(records, key=lambda r: r.num_steps)
        text = "✓ **Done.** " + " · ".join(
            f"{r.label}: {r.num_steps} steps, {r.elapsed:.2f} s" for r in records)
        if ones and fastest is not ones[0]:
            text += (f" · {fastest.label} needed {ones[0].num_steps / fastest.num_steps:.2f}× "
                     f"fewer steps than {ones[0].label}")
        return text
    clock = max(r.steps_done for r in records)
    return f"Step clock **{clock}** · " + " · ".join(
        f"{r.label} {'✓' if r.complete else f'{r.steps_done}/{r.num_steps}'}" for r in records)


@friendly
def compare(model, class_query, orderings, overlay, cfg, temperature, top_k, seed, timings):
    """Stream a comparison. Yields (combined frame, table, status, records)."""
    plan = plan_compare(model, class_query, orderings, cfg, temperature, top_k, seed)
    baseline = (timings or {}).get(plan.model)
    skip = gr.skip()
    yield skip, skip, f"Starting {len(plan.keys)} orderings for {plan.class_label} …", None
    for records, frame in compare_stream(plan, bool(overlay)):
        finished = all(r.complete for r in records)
        yield (frame, compare_table(records, baseline), _compare_status(records, finished),
               records)


@friendly
def export_compare_files(records, overlay, frame_ms, request: gr.Request = None):
    require_comparison(records), check_frame_ms(frame_ms)
    done = export_compare(records, overlay, frame_ms, _session(request))
    note = (f"{done.frames} frames: all panels on one step clock, each holding its last frame "
            f"when done; {int(frame_ms)} ms each.")
    return str(done.gif), str(done.mp4), str(done.gif), note


# ---------------------------------------------------------------- understand

@friendly
def animate_schedule(grid, parallel, order, init_tokens, frame_ms, request: gr.Request = None):
    return schedule_animation(grid, parallel, order, init_tokens, frame_ms, _session(request))


def uncertainty(record):
    return uncertainty_views(record)
