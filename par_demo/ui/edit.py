"""The Edit tab: regenerate a region of a picture (the last Generate run, an example emoji or an
upload), and branch the Generate tab's run from its replay step with 4 new seeds. The engine is
editing.py; the streams are runs.edit_stream / runs.branch_stream."""
from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass, replace
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, ClassVar

import gradio as gr
import numpy as np

from par_demo.editing import (EncodedPicture, edit_unsupported_reason, encode_picture,
                              load_editing_tokenizer, plan_branch, plan_edit)
from par_demo.heldout import HeldoutGrids
from par_demo.masks import REGIONS, CellMask, read_mask, region_mask
from par_demo.orders import ORDERS, ScheduleSpec
from par_demo.pictures import EditError, read_picture
from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.preview import decode_tokens, enlarge
from par_demo.ui import generate, views, widgets as w
from par_demo.ui.errors import fail, friendly, shown
from par_demo.ui.export import export_run, require_run
from par_demo.ui.inputs import (COMPARE_ORDERINGS, PARALLEL_CHOICES, SEED_RANGE, boolean, choice, class_id,
                                frame_ms as checked_frame_ms, number, parallelism,
                                sampling_config, usable_preset)
from par_demo.ui.runs import EditRunPlan, RunRecord, RunViews, branch_stream, edit_stream
from par_demo.ui.session import stoppable

TITLE, TAB_ID = "Edit", "edit"

BRUSH = "brush"
REGION_CHOICES = (*REGIONS, BRUSH)
BRANCHES = 4  # new seeds a branch continues with
EXAMPLES = 8  # held-out emoji offered as pictures to edit
PAPER_POINT = (
    "**The paper's point (Figure 5):** the sequential initial tokens fix the global layout. "
    "Branches taken *after* the initial tokens share the layout and differ only in details; "
    "branches taken at step 0 share nothing and come out as different pictures.")


# ---------------------------------------------------------------- pictures and masks

@lru_cache(maxsize=2)
def _tokenizer(model: str):
    """The model's tokenizer with its encoder, on the CPU (pictures are encoded there)."""
    return load_editing_tokenizer(get_preset(model))


@lru_cache(maxsize=1)
def example_pictures() -> tuple[tuple[str, np.ndarray], ...]:
    """(label, picture) of the first held-out emoji: decoded from their recorded tokens."""
    grids = HeldoutGrids.load()
    preset = get_preset(DEFAULT_MODEL)
    names = preset.class_names()
    codes = grids.codes[:EXAMPLES].reshape(EXAMPLES, -1)
    images = decode_tokens(_tokenizer(DEFAULT_MODEL), codes, grids.grid)  # on the CPU
    return tuple((f"{i}: {names.label(int(c))}", img)
                 for i, (c, img) in enumerate(zip(grids.labels[:EXAMPLES], images)))


def _file(value, field_name: str) -> str:
    """The path of an uploaded file's payload (Gradio has moved it into its cache)."""
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        return value["path"]
    if isinstance(value, str) and value:
        return value
    fail(f"{field_name}: upload a picture (PNG, JPEG, WebP or GIF), pick an example or use the "
         f"last Generate run; got {shown(value)}", title="No picture")


def editor_files(value) -> tuple[str, list[str]]:
    """(picture, brush layers) of an ImageEditor payload: the background is the picture."""
    if not isinstance(value, dict):
        _file(value, "picture")
    picture = value.get("background") or value.get("composite")
    layers = value.get("layers") or []
    if not isinstance(layers, list):
        fail(f"mask: the brush layers must be a list of pictures, got {shown(layers)}")
    return _file(picture, "picture"), [_file(layer, "mask") for layer in layers if layer]


def painted_mask(layers: list[str], picture_size: tuple[int, int], grid: int) -> CellMask:
    """The cells any brush layer paints (read from the layers' alpha)."""
    if not layers:
        raise EditError("mask: nothing is painted; paint the region to regenerate with the "
                        "brush, or pick a preset region")
    masks = [read_mask(layer, picture_size, grid) for layer in layers]
    return CellMask(grid, np.logical_or.reduce([m.selected for m in masks]))


def cells_view(picture: np.ndarray, mask: CellMask, size: int = views.DISPLAY_PX) -> np.ndarray:
    """The picture with the cells to regenerate tinted blue (emoji are mostly yellow) and the
    grid drawn."""
    image = enlarge(picture, size).astype(np.float32)
    f = image.shape[0] // mask.grid
    selected = mask.selected.reshape(mask.grid, mask.grid).repeat(f, 0).repeat(f, 1)
    image[selected] = image[selected] * 0.45 + np.array([40, 90, 255]) * 0.55
    image[::f, :] = image[:, ::f] = 255
    return image.round().clip(0, 255).astype(np.uint8)


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
    spec = ScheduleSpec(0, choice(order, "ordering", ORDERS), parallelism(parallel),
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
    encoded = encode_picture(_tokenizer(preset.name), read)
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
def edit(model, picture, region, class_query, parallel, order, init_tokens, cfg, temperature,
         top_k, seed, request: gr.Request = None):
    """Regenerate the region of the picture, streamed step by step; one EditOut per frame."""
    req = plan_edit_request(model, picture, region, class_query, parallel, order, init_tokens,
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
                report = generate.stop_report(record)
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
class Loaded:
    editor: Any
    source_note: Any = w.skip()


@friendly
def load_example(label) -> Loaded:
    pictures = dict(example_pictures())
    if label not in pictures:
        fail(f"example must be one of: {', '.join(pictures)}; got {shown(label)}")
    return Loaded(_editor_value(pictures[label]), f"Example {label}: paint or pick a region.")


@friendly
def load_generated(record) -> Loaded:
    """The Generate tab's last run, finished, as the picture to edit."""
    if not isinstance(record, RunRecord) or not record.complete:
        fail("finish a run on the Generate tab first; its picture is then edited here",
             title="No finished run")
    # the editing tokenizer, on the CPU: no model (nor GPU) is needed to decode a picture
    picture = decode_tokens(_tokenizer(record.model), record.tokens[-1][None].astype(np.int64),
                            record.grid)[0]
    return Loaded(_editor_value(picture), f"The last Generate run ({record.class_label}, "
                  f"{record.spec.label}, seed {record.config.seed}).")


def _editor_value(picture: np.ndarray) -> dict:
    big = enlarge(picture, views.DISPLAY_PX)  # painted at the displayed size
    return {"background": big, "layers": [], "composite": big}


@dataclass
class EditCompareOut:
    compare_frame: Any = w.skip()
    compare_status: Any = w.skip()


@friendly
def edit_compare(model, picture, region, class_query, orderings, cfg, temperature, top_k, seed,
                 request: gr.Request = None):
    """The same mask regenerated by 2 to 4 orderings side by side, on one step clock."""
    req = plan_edit_compare(model, picture, region, class_query, orderings, cfg, temperature,
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


# ---------------------------------------------------------------- a branch

@dataclass
class BranchOut:
    branch_frame: Any = w.skip()
    branch_status: Any = w.skip()
    branches: Any = None


def plan_branch_request(record, step, seed) -> EditRunPlan:
    if not isinstance(record, RunRecord) or not record.complete:
        fail("finish a run on the Generate tab first; a branch continues it from the step "
             "its replay slider stands on", title="No finished run")
    preset = usable_preset(record.model)
    steps_done = number(step, "step", 0, record.num_steps - 1, integer=True)
    seed = number(seed, "seed", *SEED_RANGE, integer=True)
    tokens = record.tokens[max(steps_done - 1, 0)].astype(np.int64)
    edit_plan = plan_branch(preset, record.schedule, tokens, steps_done)
    seeds = [(seed + i) % (SEED_RANGE[1] + 1) for i in range(BRANCHES)]
    return EditRunPlan(preset.name, record.class_id, record.class_label, (edit_plan,) * BRANCHES,
                       tuple(replace(record.config, seed=s) for s in seeds),
                       tuple(f"seed {s}" for s in seeds),
                       tuple(record.tokens[:steps_done]))


@friendly
def branch(record, step, seed, request: gr.Request = None):
    """Continue the Generate tab's run from `step` (steps done; 0 = before any token) with 4
    new seeds side by side, on one step clock."""
    plan = plan_branch_request(record, step, seed)
    done = plan.edits[0].prefix.steps_done
    init = record.schedule.num_init_steps
    where = ("at step 0: nothing is shared" if done == 0 else
             f"after {done} of {record.num_steps} steps"
             + (" (inside the initial tokens)" if done < init else
                (" (after the initial tokens: the layout is shared)" if init else "")))
    yield BranchOut(branch_status=f"Branching {BRANCHES} seeds {where} …")
    with closing(stoppable(branch_stream(plan), w.session_of(request))) as frames:
        for (records, frame), stopped in frames:
            finished = all(r.complete for r in records)
            state = ("■ Stopped · " if stopped else "✓ **Done** · " if finished else "")
            yield BranchOut(frame, f"{state}{BRANCHES} branches {where}: "
                            f"{plan.edits[0].steps} steps each, seeds "
                            f"{', '.join(str(c.seed) for c in plan.configs)}", records)
            if stopped:
                return


# ---------------------------------------------------------------- the tab

def build(page: SimpleNamespace) -> SimpleNamespace:
    e = SimpleNamespace(run=gr.State(None, time_to_live=w.RUN_KEEP_SECONDS),
                        branches=gr.State(None, time_to_live=w.RUN_KEEP_SECONDS))
    gen = page.tabs["generate"]
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            e.model = w.model_dropdown("edit-model")
            e.editor = gr.ImageEditor(
                label="Picture (upload, or load one below); paint the region with the brush",
                type="numpy", image_mode="RGBA", sources=["upload", "clipboard"],
                brush=gr.Brush(colors=["#ff8c00"], color_mode="fixed", default_size=24),
                eraser=gr.Eraser(default_size=24), transforms=(), layers=False,
                elem_id="edit-editor", elem_classes=["pixelated"])
            with gr.Row():
                e.example = gr.Dropdown([], label="Example emoji", elem_id="edit-example",
                                        scale=3)
                e.from_generate = gr.Button("Use the last Generate run", scale=2,
                                            elem_id="edit-from-generate")
            e.region = gr.Radio(list(REGION_CHOICES), value="right", label="Region",
                                info="brush: the cells painted on the picture",
                                elem_id="edit-region")
            e.klass = w.class_dropdown("edit-class", info="It may differ from the picture's")
            e.parallel = gr.Radio([(f"{p}x", p) for p in PARALLEL_CHOICES], value=4,
                                  label="Parallelism (tokens per step)", elem_id="edit-parallel")
            e.order = gr.Radio(list(ORDERS), value="distant", label="Ordering over the region",
                               elem_id="edit-order")
            e.init = gr.Checkbox(value=True, label="Sequential initial tokens")
            stop = w.run_controls("edit", e, "Regenerate the region",
                                  "Regenerates the region's cells; the others are kept.")
        with gr.Column(scale=3):
            e.status = gr.Markdown("Pick a picture and a region, then **Regenerate**.",
                                   elem_classes=["par-status"], elem_id="edit-status")
            e.source_note = gr.Markdown(elem_id="edit-source-note")
            with gr.Row():
                e.original = w.image("Original", elem_id="edit-original")
                e.reconstruction = w.image("Reconstruction from its tokens",
                                           elem_id="edit-reconstruction")
                e.cells = w.image("Cells to regenerate (blue)", elem_id="edit-cells")
            e.step = w.replay_slider("edit-step")
            with gr.Row():
                e.image = w.image("Edit so far (pending cells masked)", elem_id="edit-image")
                e.overlay = w.image("Figure 3 overlay (kept cells crossed)",
                                    elem_id="edit-overlay")
            with gr.Row():
                e.tokens = w.image("Token grid", elem_id="edit-grid")
                e.entropy = w.image("Uncertainty", elem_id="edit-entropy")
            e.record = w.record_row("edit", "export_edit", export_edit_files, e.run)
            with gr.Accordion("Run details", open=False):
                e.details = gr.JSON(label="Run details")
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
    with gr.Group():
        gr.Markdown("### Branch the Generate tab's run\nFrom the step its replay slider "
                    f"stands on (move it back from the last step first), {BRANCHES} new seeds "
                    "continue the run side by side (every model, the released ones with their "
                    "own schedule).  \n" + PAPER_POINT)
        with gr.Row(equal_height=True):
            e.branch_seed = gr.Number(value=0, precision=0, minimum=SEED_RANGE[0],
                                      maximum=SEED_RANGE[1], label="First seed",
                                      elem_id="branch-seed")
            e.branch_button = gr.Button(f"Branch {BRANCHES} seeds from the replay step",
                                        variant="primary", elem_id="branch-run")
        e.branch_status = gr.Markdown(elem_classes=["par-status"], elem_id="branch-status")
        e.branch_frame = w.image("Branches side by side", elem_id="branch-frame")

    inputs = [e.model, e.editor, e.region, e.klass, e.parallel, e.order, e.init, e.cfg,
              e.temperature, e.top_k, e.seed]
    page.demo.load(lambda: gr.update(choices=[label for label, _ in example_pictures()]),
                   None, e.example, **w.UI)
    w.on(e.example.input, load_example, e.example, e, Loaded, **w.UI)
    w.on(e.from_generate.click, load_generated, gen.run, e, Loaded, **w.UI)
    w.on(e.run_button.click, w.reset_downloads, None, e.record, w.ExportOut, **w.UI)
    w.on(e.run_button.click, w.replay_off, None, e, w.ReplayRange, **w.UI)
    w.bring_into_view(e.run_button.click, "edit-status")
    w.bring_into_view(e.branch_button.click, "branch-status")
    e.runs = [w.on(e.run_button.click, edit, inputs, e, EditOut, api_name="edit",
                   show_progress="minimal", **w.SCRIPTED, **w.RUN)]
    e.compare_runs = [w.on(e.compare_button.click, edit_compare,
                           [e.model, e.editor, e.region, e.klass, e.orderings, e.cfg,
                            e.temperature, e.top_k, e.seed], e, EditCompareOut,
                           api_name="edit_compare", show_progress="minimal", **w.SCRIPTED,
                           **w.RUN)]
    stopped = w.on(stop.click, generate.stop_run, None, e, generate.Stopped,
                   cancels=e.runs + e.compare_runs,
                   queue=False, api_visibility="private")
    for done in e.runs + [stopped]:
        w.on(done.success, w.replay_range, e.run, e, w.ReplayRange, **w.UI)
    for run in e.runs:
        w.on(run.failure, generate.refused, None, e, generate.Refused, **w.UI)
    w.on(e.step.input, generate.replay, [e.run, e.step], e, generate.Replayed,
         trigger_mode="always_last", api_visibility="private", concurrency_id="replay",
         concurrency_limit=4)
    seeded = e.branch_button.click(w.random_seed, None, e.branch_seed, **w.UI)
    e.branch_runs = [w.on(seeded.then, branch, [gen.run, gen.step, e.branch_seed], e, BranchOut,
                          api_name="branch", show_progress="minimal", **w.SCRIPTED, **w.RUN)]
    return e
