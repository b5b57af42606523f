"""The Compare tab: 2 to 4 orderings with the same class and seed on one step clock, their
table, replay, Stop and exports; the layout, the events and their output dataclasses."""
from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import gradio as gr

from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.ui import api_docs, views, widgets as w
from par_demo.ui.errors import fail, friendly
from par_demo.ui.export import export_compare, require_comparison
from par_demo.ui.inputs import (COMPARE_ORDERINGS, DEFAULT_COMPARE, boolean, compare_schedules,
                                frame_ms as checked_frame_ms, number, plan_compare)
from par_demo.ui.runs import (COMPARE_HEADERS, RunRecord, compare_stream, compare_table,
                              replay_compare)
from par_demo.ui.session import RUNS, stoppable

TITLE, TAB_ID = "Compare", "compare"


@dataclass
class CompareModelChange:
    klass: Any
    cfg: Any


def compare_model_changed(model: str, current_class) -> CompareModelChange:
    return CompareModelChange(w.class_update(model, current_class),
                              gr.update(value=get_preset(model).sampling.cfg_scale))


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


def _status(records, finished: bool, wall: float) -> str:
    if finished:
        ones = [r for r in records if r.schedule.one_token_per_step]
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
    frame: Any = w.skip()
    table: Any = w.skip()
    status: Any = w.skip()
    records: list[RunRecord] | None = None


@friendly
def compare(model, class_name, orderings, overlay, cfg, temperature, top_k, seed, timings,
            request: gr.Request = None):
    """Stream a comparison, one CompareOut per frame, until done or stopped."""
    started = time.perf_counter()
    plan = plan_compare(model, class_name, orderings, cfg, temperature, top_k, seed)
    overlay = boolean(overlay, "overlay")
    baseline = (timings or {}).get(plan.model)
    yield CompareOut(status=f"Starting {len(plan.keys)} orderings for {plan.class_label} …")
    with closing(stoppable(compare_stream(plan, overlay), w.session_of(request))) as frames:
        for (records, frame), stopped in frames:
            if stopped:
                yield CompareOut(status=_stopped_line(records), records=records)
            else:
                finished = all(r.complete for r in records)
                yield CompareOut(frame, compare_table(records, baseline),
                                 _status(records, finished, time.perf_counter() - started),
                                 records)


def _stopped_line(records: list[RunRecord]) -> str:
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
    step: Any = field(default_factory=lambda: gr.update(interactive=False, visible=False))


def compare_refused() -> CompareRefused:
    return CompareRefused()


def compare_stopped(request: gr.Request = None):
    """Stop on Compare: ends the caller's runs and reports where the comparison ended."""
    ended = [r.last for r in RUNS.stop(w.session_of(request)) if isinstance(r.last, list)]
    if not ended or all(r.complete for r in ended[-1]):
        return gr.skip()
    return _stopped_line(ended[-1])


@dataclass
class ReplayedCompare:
    frame: Any


@friendly
def replay_comparison(records, overlay, tick, final_overlay=False) -> ReplayedCompare:
    """Every panel after step clock `tick` (1-based); finished panels hold their last step,
    clean unless `final_overlay`."""
    if not records or not all(r.tokens for r in records):
        fail("run a comparison first; the slider replays its steps", title="Nothing to replay")
    last = max(r.steps_done for r in records)
    tick = number(tick, "step", 1, max(last, 2), integer=True)
    return ReplayedCompare(replay_compare(records, boolean(overlay, "overlay"),
                                          min(tick, last) - 1,
                                          boolean(final_overlay, "final overlay")))


def overlay_toggled(records, overlay, tick, final_overlay):
    """The finished pictures' overlay switched: redrawn at the slider's tick; nothing before a
    comparison has run."""
    if not records or not all(r.tokens for r in records):
        return ReplayedCompare(gr.skip())
    return replay_comparison(records, overlay, tick, final_overlay)


@friendly
def export_compare_files(records, overlay, frame_ms, request: gr.Request = None) -> w.ExportOut:
    require_comparison(records)
    overlay, frame_ms = boolean(overlay, "overlay"), checked_frame_ms(frame_ms)
    done = export_compare(records, overlay, frame_ms, w.session_of(request))
    note = (f"{w.frames_text(done, 'tick of the step clock')}: all panels on one step clock, "
            f"each holding its last frame when done; {frame_ms} ms each.")
    return w.ExportOut.of(done, note)


def build(page: SimpleNamespace) -> SimpleNamespace:
    c = SimpleNamespace(timings=page.timings,
                        records=gr.State(None, time_to_live=w.RUN_KEEP_SECONDS))
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            c.model = w.model_dropdown("cmp-model")
            c.klass = w.class_dropdown("cmp-class")
            # the action first: the ordering list is long, the button stays in view
            stop = w.run_controls("cmp", c, "Compare",
                                  compare_check(DEFAULT_MODEL, DEFAULT_COMPARE).check)
            c.orderings = gr.CheckboxGroup(
                [(desc, key) for key, (desc, _) in COMPARE_ORDERINGS.items()],
                value=DEFAULT_COMPARE, label="Orderings (2 to 4)", elem_id="cmp-orderings")
            c.overlay = gr.Checkbox(value=True, label="Figure 3 overlay while streaming",
                                    info="Finished pictures are shown clean")
        with gr.Column(scale=3):
            c.status = gr.Markdown(
                "Same class, same seed, several orderings. All advance one step per tick, so "
                "the orderings with fewer steps finish first.", label="Status",
                elem_classes=["par-status"], elem_id="cmp-status")
            c.step = w.replay_slider("cmp-step")
            c.final_overlay = w.final_overlay_switch("cmp-final-overlay")
            gr.Markdown("Scroll the panels sideways to see every ordering →",
                        elem_classes=["par-scroll-hint"], elem_id="cmp-scroll-hint")
            c.frame = w.image("Side by side", elem_id="cmp-frame")
            c.table = gr.Dataframe(headers=COMPARE_HEADERS, label="Steps, time and speedup. "
                                   "Speedup in steps = tokens ÷ steps; in time = a 1x run's "
                                   "seconds ÷ this run's", interactive=False,
                                   elem_id="cmp-table")
            c.record = w.record_row("cmp", "export_compare", export_compare_files, c.records)
    gr.Examples(
        [[DEFAULT_MODEL, w.class_label(DEFAULT_MODEL, "owl"),
          ["raster 1x", "distant 4x", "distant 16x"]],
         [DEFAULT_MODEL, w.class_label(DEFAULT_MODEL, "grinning face"),
          ["distant 16x", "raster 16x", "random 4x"]],
         [DEFAULT_MODEL, w.class_label(DEFAULT_MODEL, "united states"),
          ["distant 4x", "distant 4x no-init"]],
         [DEFAULT_MODEL, w.class_label(DEFAULT_MODEL, "heart"),
          ["distant 4x", "zipar w2", "zipar w3", "random-cosine 67"]],
         [DEFAULT_MODEL, w.class_label(DEFAULT_MODEL, "red apple"),
          ["distant 16x", "diagonal", "random-cosine 31"]]],
        inputs=[c.model, c.klass, c.orderings], cache_examples=False, label="Examples",
        example_labels=["baseline vs PAR 4x vs 16x", "far apart vs neighbours vs random",
                        "with vs without initial tokens",
                        "PAR 4x vs its rivals near 67 steps", "PAR 16x vs its rivals at 31 steps"])

    w.on(c.model.change, compare_model_changed, [c.model, c.klass], c, CompareModelChange,
         **w.UI)
    w.on(gr.on, compare_check, [c.model, c.orderings], c, CompareCheck,
         triggers=[c.model.change, c.orderings.change], **w.UI)
    w.on(c.run_button.click, w.reset_downloads, None, c.record, w.ExportOut, **w.UI)
    w.on(c.run_button.click, w.replay_off, None, c, w.ReplayRange, **w.UI)
    w.on(c.run_button.click, w.final_overlay_off, None, c, w.FinalOverlay, **w.UI)
    w.bring_into_view(c.run_button.click, "cmp-status")
    run = w.on(c.run_button.click, compare,
               [c.model, c.klass, c.orderings, c.overlay, c.cfg, c.temperature, c.top_k, c.seed,
                c.timings], c, CompareOut, api_name="compare",
               api_description=api_docs.COMPARE, show_progress="minimal", **w.SCRIPTED, **w.RUN)
    stopped = stop.click(compare_stopped, None, c.status, cancels=[run], **w.UI)
    for done in (run, stopped):
        w.on(done.success, w.replay_range, c.records, c, w.ReplayRange, **w.UI)
    w.on(run.failure, compare_refused, None, c, CompareRefused, **w.UI)
    w.on(c.step.input, replay_comparison, [c.records, c.overlay, c.step, c.final_overlay], c,
         ReplayedCompare, trigger_mode="always_last", api_visibility="private",
         concurrency_id="replay", concurrency_limit=4)
    w.on(c.final_overlay.input, overlay_toggled,
         [c.records, c.overlay, c.step, c.final_overlay], c, ReplayedCompare,
         trigger_mode="always_last", api_visibility="private", concurrency_id="replay",
         concurrency_limit=4)
    return c
