"""The Edit tab: regenerate a region of a picture (an example emoji, the last Generate run or an
upload) with any ordering, compare orderings over the same region, and branch the Generate tab's
run (branch.py). The pictures and masks are edit_sources.py; the engine is editing.py; the
streams are runs.edit_stream / runs.branch_stream."""
from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import gradio as gr
import numpy as np

from par_demo.editing import EncodedPicture, edit_unsupported_reason, encode_picture, plan_edit
from par_demo.masks import REGIONS, CellMask, region_mask
from par_demo.orders import PAR_ORDERS, ScheduleSpec
from par_demo.pictures import read_picture
from par_demo.preview import enlarge
from par_demo.ui import api_docs, branch, views, widgets as w
from par_demo.ui.edit_sources import (Loaded, cells_view, editor_files, example_pictures,
                                      load_example, load_generated, painted_mask, tokenizer)
from par_demo.ui.errors import fail, friendly, shown
from par_demo.ui.export import export_run, require_run
from par_demo.ui.inputs import (COMPARE_ORDERINGS, PARALLEL_CHOICES, boolean, choice, class_id,
                                frame_ms as checked_frame_ms, parallelism, sampling_config,
                                usable_preset)
from par_demo.ui.runs import EditRunPlan, RunRecord, RunViews, branch_stream, edit_stream
from par_demo.ui.session import stoppable
from par_demo.ui.single_run import (Refused, Replayed, Stopped, refused, replay, stop_report,
                                    stop_run)

TITLE, TAB_ID = "Edit", "edit"

BRUSH = "brush"
REGION_CHOICES = (*REGIONS, BRUSH)
EDITOR_LABEL = "Picture: upload one or load one below, then paint the region with the brush"
SMALL_PICTURE_PX = 150  # two pictures side by side on a phone: the tab stays short


# ---------------------------------------------------------------- an edit's request

@dataclass(frozen=True)
class EditRequest:
    plan: EditRunPlan
    encoded: EncodedPicture
    original: np.ndarray
    mask: CellMask
    notes: tuple[str, ...]


def plan_edit_request(model, picture, region, class_query, parallel, order, init_tokens, cfg,
                      temperature, top_k, seed) -> EditRequest:
    """Every input read strictly; the picture read, encoded and its region planned."""
    spec = ScheduleSpec(0, choice(order, "ordering", PAR_ORDERS), parallelism(parallel),
                        boolean(init_tokens, "initial tokens"))
    return _request(model, picture, region, class_query, {f"edit {spec.label}": spec}, cfg,
                    temperature, top_k, seed)


def plan_edit_compare(model, picture, region, class_query, orderings, cfg, temperature, top_k,
                      seed) -> EditRequest:
    """An edit per ordering (2 to 4 of the Compare tab's names) of the same mask and seed."""
    if not isinstance(orderings, (list, tuple)) or not all(isinstance(k, str) for k in orderings):
        fail(f"orderings must be a list of 2 to 4 of: {', '.join(COMPARE_ORDERINGS)}; got "
             f"{shown(orderings)}")
    unknown = [k for k in orderings if k not in COMPARE_ORDERINGS]
    if unknown:
        fail(f"unknown ordering {shown(unknown[0])}; choose from: {', '.join(COMPARE_ORDERINGS)}")
    if len(set(orderings)) != len(orderings) or not 2 <= len(orderings) <= 4:
        fail(f"orderings: choose 2 to 4 different ones (now {len(orderings)})")
    return _request(model, picture, region, class_query,
                    {k: COMPARE_ORDERINGS[k][1] for k in orderings}, cfg, temperature, top_k,
                    seed)


def _request(model, picture, region, class_query, specs: dict[str, ScheduleSpec], cfg,
             temperature, top_k, seed) -> EditRequest:
    preset = usable_preset(model)
    region = choice(region, "region", REGION_CHOICES)
    klass, label = class_id(preset, class_query)
    config = sampling_config(preset, cfg, temperature, top_k, seed)
    picture_file, layers = editor_files(picture)
    grid = preset.args.grid
    if region != BRUSH:
        mask = region_mask(region, grid)  # checked before the picture is read: refused early
    if (reason := edit_unsupported_reason(preset)):
        fail(f"{reason}. Released models are offered branching only (below).",
             title="This model cannot edit")
    read = read_picture(picture_file, preset.image_size)
    if region == BRUSH:
        mask = painted_mask(layers, read.source_size, grid)
    encoded = encode_picture(tokenizer(preset.name), read)
    edits = tuple(plan_edit(preset, encoded.tokens, mask, spec) for spec in specs.values())
    return EditRequest(EditRunPlan(preset.name, klass, label, edits, (config,) * len(edits),
                                   tuple(specs)),
                       encoded, read.original, mask, read.notes)


# ---------------------------------------------------------------- an edit

@dataclass
class SourceViews:
    """The picture being edited; the page's components carry these names."""
    output_group: ClassVar[bool] = True
    original: np.ndarray  # as read, on white
    reconstruction: np.ndarray  # what its tokens decode to, enlarged
    cells: np.ndarray  # the cells to regenerate


@dataclass
class EditOut:
    source: SourceViews | None = w.skip()
    source_note: Any = w.skip()
    pictures: RunViews | None = w.skip()
    status: Any = w.skip()
    details: Any = w.skip()
    run: RunRecord | None = None


def _live(record: RunRecord, plan) -> str:
    e = plan.edits[0]
    return (f"Step **{record.steps_done}** of **{record.num_steps}** · regenerating "
            f"{e.generated_cells} cells, keeping {e.kept_cells} · {record.elapsed:.2f} s so far")


def _done(record: RunRecord, plan, wall: float) -> str:
    e = plan.edits[0]
    return (f"✓ **Done**: {record.num_steps} steps regenerated {e.generated_cells} cells "
            f"({e.generated_cells / record.num_steps:.1f} per step), {e.kept_cells} kept "
            f"unchanged · seed {record.config.seed}  \n"
            + views.timing_text(record.elapsed, wall, record.device, record.cold))


@friendly
def edit(model, picture, region, class_name, parallel, order, init_tokens, cfg, temperature,
         top_k, seed, request: gr.Request = None):
    """Regenerate the region of the picture, streamed step by step; one EditOut per frame."""
    req = plan_edit_request(model, picture, region, class_name, parallel, order, init_tokens,
                            cfg, temperature, top_k, seed)
    started = time.perf_counter()
    plan = req.plan
    source = SourceViews(req.original, enlarge(req.encoded.reconstruction, views.DISPLAY_PX),
                         cells_view(req.encoded.reconstruction, req.mask))
    note = (f"Reconstruction from its tokens: **PSNR {req.encoded.psnr:.1f} dB** (what the "
            f"tokens keep) · {req.mask.count} of {req.mask.grid ** 2} cells to regenerate")
    if req.notes:
        note += " · " + "; ".join(req.notes)
    yield EditOut(source, note, status=f"Starting {plan.labels[0]} for {plan.class_label} …")
    with closing(stoppable(edit_stream(plan), w.session_of(request))) as frames:
        for (record, pictures), stopped in frames:
            if stopped:
                report = stop_report(record)
                yield EditOut(source, note, pictures, report.status, report.details, record)
                return
            status = (_done(record, plan, time.perf_counter() - started) if record.complete
                      else _live(record, plan))
            details = record.summary() | {"kept_cells": plan.edits[0].kept_cells,
                                          "generated_cells": plan.edits[0].generated_cells,
                                          "psnr": round(req.encoded.psnr, 2)}
            if record.complete:  # the final output holds everything (an API call's answer)
                yield EditOut(source, note, pictures, status, details, record)
            else:
                yield EditOut(pictures=pictures, status=status, details=details, run=record)


@friendly
def export_edit_files(record, overlay, frame_ms, request: gr.Request = None) -> w.ExportOut:
    """GIF and MP4 of the last edit."""
    require_run(record, "edit a picture first")
    overlay, frame_ms = boolean(overlay, "overlay"), checked_frame_ms(frame_ms)
    done = export_run(record, overlay, frame_ms, w.session_of(request))
    note = (f"{w.frames_text(done, 'step')}, {frame_ms} ms each, "
            f"{'with' if overlay else 'without'} the Figure 3 overlay (kept cells crossed).")
    return w.ExportOut.of(done, note)


@dataclass
class EditCompareOut:
    compare_frame: Any = w.skip()
    compare_status: Any = w.skip()


@friendly
def edit_compare(model, picture, region, class_name, orderings, cfg, temperature, top_k, seed,
                 request: gr.Request = None):
    """The same mask regenerated by 2 to 4 orderings side by side, on one step clock."""
    req = plan_edit_compare(model, picture, region, class_name, orderings, cfg, temperature,
                            top_k, seed)
    plan = req.plan
    yield EditCompareOut(compare_status=f"Comparing {len(plan.edits)} orderings over "
                         f"{req.mask.count} cells …")
    with closing(stoppable(branch_stream(plan), w.session_of(request))) as frames:
        for (records, frame), stopped in frames:
            rows = " · ".join(f"{r.label}: {r.num_steps} steps" for r in records)
            state = ("■ Stopped · " if stopped else
                     "✓ **Done** · " if all(r.complete for r in records) else "")
            yield EditCompareOut(frame, f"{state}{req.mask.count} cells regenerated, "
                                 f"seed {plan.configs[0].seed}: {rows}")
            if stopped:
                return


# ---------------------------------------------------------------- the tab

def build(page: SimpleNamespace) -> SimpleNamespace:
    """The Edit tab: its controls, outputs and region comparison, the Branch section, then the
    events that join them."""
    e = SimpleNamespace(run=gr.State(None, time_to_live=w.RUN_KEEP_SECONDS))
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            _picture_controls(e)
            _edit_controls(e)
        with gr.Column(scale=3):
            _outputs(e)
            _region_comparison(e)
    e.branch = branch.build(page.tabs["generate"])
    _events(e, page)
    return e


def _picture_controls(e: SimpleNamespace) -> None:
    """The model, the picture editor and where its picture comes from."""
    e.model = w.model_dropdown("edit-model")
    # the caption above the editor, not Gradio's label: the editor's toolbar would cover it
    gr.Markdown(f"**{EDITOR_LABEL}**", elem_classes=["par-caption"], elem_id="edit-editor-label")
    e.editor = gr.ImageEditor(
        label=EDITOR_LABEL, show_label=False, type="numpy", image_mode="RGBA",
        sources=["upload", "clipboard"],
        brush=gr.Brush(colors=["#ff8c00"], color_mode="fixed", default_size=24),
        eraser=gr.Eraser(default_size=24), transforms=(), layers=False,
        elem_id="edit-editor", elem_classes=["pixelated"])
    with gr.Row():
        # unseen emoji have no class of their own under the per-emoji model
        e.example = gr.Dropdown([], label="Example emoji (unseen in training)",
                                info="Sets the class to the nearest trained emoji",
                                elem_id="edit-example", scale=3)
        e.from_generate = gr.Button("Use the last Generate run", scale=2,
                                    elem_id="edit-from-generate")


def _edit_controls(e: SimpleNamespace) -> None:
    """The region, what to regenerate it as and how; the run buttons and sampling."""
    e.region = gr.Radio(list(REGION_CHOICES), value="right", label="Region",
                        info="brush: the cells painted on the picture", elem_id="edit-region")
    e.klass = w.class_dropdown("edit-class", info="It may differ from the picture's")
    e.parallel = gr.Radio([(f"{p}x", p) for p in PARALLEL_CHOICES], value=4,
                          label="Parallelism (tokens per step)", elem_id="edit-parallel")
    e.order = gr.Radio(list(PAR_ORDERS), value="distant", label="Ordering over the region",
                       elem_id="edit-order")
    e.init = gr.Checkbox(value=True, label="Sequential initial tokens")
    e.stop = w.run_controls("edit", e, "Regenerate the region",
                            "Regenerates the region's cells; the others are kept.")


def _outputs(e: SimpleNamespace) -> None:
    """The status, the picture as read and encoded, the edit as it streams and its exports;
    named as SourceViews' and RunViews' fields."""
    e.status = gr.Markdown("Pick a picture and a region, then **Regenerate**.",
                           elem_classes=["par-status"], elem_id="edit-status")
    e.source_note = gr.Markdown(elem_id="edit-source-note")
    small = dict(min_width=SMALL_PICTURE_PX)
    with gr.Row():
        e.original = w.image("Original", elem_id="edit-original", **small)
        e.reconstruction = w.image("Reconstruction from its tokens",
                                   elem_id="edit-reconstruction", **small)
        e.cells = w.image("Cells to regenerate (blue)", elem_id="edit-cells", **small)
    e.step = w.replay_slider("edit-step")
    with gr.Row():
        e.image = w.image("Edit so far (pending cells masked)", elem_id="edit-image", **small)
        e.overlay = w.image("Figure 3 overlay (kept cells crossed)", elem_id="edit-overlay",
                            **small)
    with gr.Row():
        e.tokens = w.image("Token grid", elem_id="edit-grid", **small)
        e.entropy = w.image("Uncertainty", elem_id="edit-entropy", **small)
    e.record = w.record_row("edit", "export_edit", export_edit_files, e.run)
    with gr.Accordion("Run details", open=False):
        e.details = gr.JSON(label="Run details")


def _region_comparison(e: SimpleNamespace) -> None:
    with gr.Accordion("Compare orderings for this region", open=False):
        with gr.Row(equal_height=True):
            e.orderings = gr.Dropdown(list(COMPARE_ORDERINGS), multiselect=True,
                                      value=["raster 1x", "distant 4x", "raster 4x"],
                                      label="Orderings (2 to 4)", scale=3,
                                      elem_id="edit-orderings")
            e.compare_button = gr.Button("Compare", elem_id="edit-compare")
        e.compare_status = gr.Markdown(elem_id="edit-compare-status")
        e.compare_frame = w.image("Orderings side by side (same mask, same seed)",
                                  elem_id="edit-compare-frame")


def _events(e: SimpleNamespace, page: SimpleNamespace) -> None:
    page.demo.load(lambda: gr.update(choices=[x.label for x in example_pictures()]),
                   None, e.example, **w.UI)
    w.on(e.example.input, load_example, e.example, e, Loaded, **w.UI)
    w.on(e.from_generate.click, load_generated, page.tabs["generate"].run, e, Loaded, **w.UI)

    inputs = [e.model, e.editor, e.region, e.klass, e.parallel, e.order, e.init, e.cfg,
              e.temperature, e.top_k, e.seed]
    w.on(e.run_button.click, w.reset_downloads, None, e.record, w.ExportOut, **w.UI)
    w.on(e.run_button.click, w.replay_off, None, e, w.ReplayRange, **w.UI)
    w.bring_into_view(e.run_button.click, "edit-status")
    e.runs = [w.on(e.run_button.click, edit, inputs, e, EditOut, api_name="edit",
                   api_description=api_docs.EDIT,
                   show_progress="minimal", **w.SCRIPTED, **w.RUN)]
    e.compare_runs = [w.on(e.compare_button.click, edit_compare,
                           [e.model, e.editor, e.region, e.klass, e.orderings, e.cfg,
                            e.temperature, e.top_k, e.seed], e, EditCompareOut,
                           api_name="edit_compare", api_description=api_docs.EDIT_COMPARE,
                           show_progress="minimal", **w.SCRIPTED,
                           **w.RUN)]
    stopped = w.on(e.stop.click, stop_run, None, e, Stopped, cancels=e.runs + e.compare_runs,
                   queue=False, api_visibility="private")
    for done in e.runs + [stopped]:
        w.on(done.success, w.replay_range, e.run, e, w.ReplayRange, **w.UI)
    for run in e.runs:
        w.on(run.failure, refused, None, e, Refused, **w.UI)
    w.on(e.step.input, replay, [e.run, e.step], e, Replayed, trigger_mode="always_last",
         api_visibility="private", concurrency_id="replay", concurrency_limit=4)
