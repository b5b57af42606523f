"""GIF and MP4 files of a run or a comparison, one frame per step, written per session into a
temporary folder of the app's file store (files.py)."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from par_demo.animation import side_by_side, thin, write_animation
from par_demo.ui import inputs, views
from par_demo.ui.errors import fail
from par_demo.ui.files import FILES
from par_demo.ui.machine import MODELS, placed
from par_demo.ui.runs import RunRecord

MAX_FRAMES = 96  # longer runs are thinned to this many steps, the first and last kept


@dataclass(frozen=True)
class Exported:
    gif: Path
    mp4: Path
    frames: int  # frames written: one per step, or MAX_FRAMES spread over a longer run
    steps: int  # steps (comparisons: ticks of the step clock) the frames are taken from


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def stem(record: RunRecord, overlay: bool, extra: str = "") -> str:
    name = (f"par_{_slug(record.model)}_class{record.class_id}_{record.spec.slug}"
            f"_seed{record.config.seed}{extra}{'_overlay' if overlay else ''}")
    return f"{name}_{uuid.uuid4().hex[:6]}"


def run_frames(loaded, record: RunRecord, overlay: bool, size: int, steps: Sequence[int],
               label: str | None = None) -> list[np.ndarray]:
    """A captioned frame for each of `steps` (0-based steps the run finished)."""
    return [views.panel(record.frame(loaded, step, size, overlay), label or record.spec.label,
                        step, record.num_steps) for step in steps]


def _write(frames: Sequence[np.ndarray], folder: Path, name: str, frame_ms: int,
           steps: int) -> Exported:
    gif = write_animation(frames, folder / f"{name}.gif", frame_ms)
    mp4 = write_animation(frames, folder / f"{name}.mp4", frame_ms)
    return Exported(gif, mp4, len(frames), steps)


def require_run(record: RunRecord | None, first: str = "generate an image first") -> RunRecord:
    if record is None or not record.tokens:
        fail(f"{first}; its animation is what gets exported", title="Nothing to export")
    return record


def require_comparison(records: Sequence[RunRecord] | None) -> Sequence[RunRecord]:
    if not records or not all(r.tokens for r in records):
        fail("run a comparison first; its combined animation is what gets exported",
             title="Nothing to export")
    return records


def export_run(record: RunRecord | None, overlay: bool, frame_ms, session: str | None = None
               ) -> Exported:
    """GIF and MP4 of a run, one frame per step it finished."""
    record = require_run(record)
    return _placed_export_run(record.model, record, bool(overlay), inputs.frame_ms(frame_ms),
                              session)


def _export_run(record: RunRecord, overlay: bool, frame_ms: int, session: str | None,
                device: str | None) -> Exported:
    loaded = MODELS.get(record.model, device)
    frames = run_frames(loaded, record, overlay, views.DISPLAY_PX,
                        thin(record.steps_done, MAX_FRAMES))
    return _write(frames, FILES.session_dir(session), stem(record, overlay), frame_ms,
                  record.steps_done)


_placed_export_run = placed(_export_run, duration=60)


def export_compare(records: Sequence[RunRecord] | None, overlay: bool, frame_ms,
                   session: str | None = None) -> Exported:
    """GIF and MP4 of a comparison: its panels side by side on one step clock."""
    records = require_comparison(records)
    return _placed_export_compare(records[0].model, list(records), bool(overlay),
                                  inputs.frame_ms(frame_ms), session)


def _export_compare(records: list[RunRecord], overlay: bool, frame_ms: int,
                    session: str | None, device: str | None) -> Exported:
    loaded = MODELS.get(records[0].model, device)
    clock = max(r.steps_done for r in records)
    ticks = thin(clock, MAX_FRAMES)
    held = [[min(t, r.steps_done - 1) for t in ticks] for r in records]  # finished: last step
    panels = []
    for r, steps in zip(records, held):
        distinct = sorted(set(steps))  # a held step is drawn once
        drawn = dict(zip(distinct, run_frames(loaded, r, overlay, views.PANEL_PX, distinct,
                                              r.label)))
        panels.append([drawn[s] for s in steps])
    frames = side_by_side(panels)
    keys = "-vs-".join(_slug(r.label) for r in records)
    name = (f"par_compare_class{records[0].class_id}_seed{records[0].config.seed}_{keys}"
            f"{'_overlay' if overlay else ''}_{uuid.uuid4().hex[:6]}")
    return _write(frames, FILES.session_dir(session), name, frame_ms, clock)


_placed_export_compare = placed(_export_compare, duration=90)
