"""Edits and branches: regenerate some cells of a picture, or continue a recorded run from a step.

    picture  = read_picture(upload, preset.image_size)            # pictures.py
    encoded  = encode_picture(load_editing_tokenizer(preset), picture)
    mask     = region_mask("right", grid) or read_mask(layer, picture.source_size, grid)
    plan     = plan_edit(preset, encoded.tokens, mask, ScheduleSpec(grid, "distant", 4))
    events   = run_plan(model, plan, [class_id], config)           # one StepEvent per step

An edit's schedule covers the masked cells only (orders.subset_schedule); the other cells are
kept: their tokens enter as a prefix and never change. Only a target-aware model can keep an
arbitrary set of cells. A branch continues any run, on any model, from one of its steps with new
seeds: the tokens of the steps before it are the prefix, the schedule is the run's own.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import numpy as np
import torch

from par_demo.checkpoints import load_tokenizer, weight_file
from par_demo.masks import CellMask
from par_demo.models.slots import slot_layout
from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.orders import Schedule, ScheduleSpec, subset_schedule
from par_demo.pictures import EditError, Picture
from par_demo.presets import ModelPreset, UnsupportedSchedule
from par_demo.preview import decode_tokens
from par_demo.sampler import KEPT_CELLS_NEED_TARGET_AWARE, Prefix, StepEvent, sample_steps
from par_demo.sampling import SamplingConfig


@dataclass(frozen=True)
class EditPlan:
    schedule: Schedule  # over the cells to generate; schedule.kept_cells are kept
    prefix: Prefix  # tokens of the kept cells and of the steps already done

    @property
    def kept_cells(self) -> int:
        """Cells known before the run starts."""
        return int(self.prefix.known_cells(self.schedule).sum())

    @property
    def generated_cells(self) -> int:
        return self.schedule.grid ** 2 - self.kept_cells

    @property
    def steps(self) -> int:
        """Steps the run takes."""
        return self.schedule.num_steps - self.prefix.steps_done


@dataclass(frozen=True, eq=False)
class EncodedPicture:
    tokens: np.ndarray  # [G*G] int64: the picture's codes
    reconstruction: np.ndarray  # [size, size, 3] uint8: what those codes decode to
    psnr: float  # dB, of the reconstruction against the picture


def edit_unsupported_reason(preset: ModelPreset) -> str | None:
    """Why `preset` cannot edit (keep an arbitrary set of cells), or None when it can."""
    return None if preset.args.target_aware else f"{preset.name}: {KEPT_CELLS_NEED_TARGET_AWARE}"


def load_editing_tokenizer(preset: ModelPreset, device="cpu") -> VQModel:
    """The preset's tokenizer with its encoder (the app's decoding-only copy has none)."""
    tokenizer = replace(preset.tokenizer, args=replace(preset.tokenizer.args, with_encoder=True))
    return load_tokenizer(tokenizer, weight_file(tokenizer.weights), device)


@torch.inference_mode()
def encode_picture(tokenizer: VQModel, picture: Picture) -> EncodedPicture:
    device = next(tokenizer.parameters()).device
    x = torch.tensor(picture.image, device=device).permute(2, 0, 1)[None].float() / 127.5 - 1
    codes = tokenizer.encode(x).codes
    grid = codes.shape[-1]
    tokens = codes.reshape(-1).cpu().numpy().astype(np.int64)
    reconstruction = decode_tokens(tokenizer, tokens[None], grid)[0]
    # train.metrics.psnr's formula: the app imports nothing from train/
    mse = np.mean((reconstruction.astype(np.float64) - picture.image) ** 2)
    return EncodedPicture(tokens, reconstruction,
                          float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10))))


def plan_edit(preset: ModelPreset, tokens: np.ndarray, mask: CellMask,
              spec: ScheduleSpec) -> EditPlan:
    """Regenerate `mask`'s cells of a picture's `tokens` ([G*G]) with `spec`'s ordering over
    them; UnsupportedSchedule or EditError say why not."""
    reason = edit_unsupported_reason(preset)
    if reason:
        raise UnsupportedSchedule(reason)
    grid = preset.args.grid
    if spec.grid not in (0, grid):  # 0: the model's grid
        raise UnsupportedSchedule(f"{preset.name} generates a {grid}x{grid} grid, not "
                                  f"{spec.grid}x{spec.grid}")
    if mask.grid != grid:
        raise EditError(f"mask: a {mask.grid}x{mask.grid} grid of cells; {preset.name} "
                        f"generates {grid}x{grid}")
    if mask.count == 0:
        raise EditError("mask: no cell is selected, so there is nothing to regenerate; paint "
                        "a region or pick a preset")
    if mask.count == grid * grid:
        raise EditError("mask: every cell is selected; that is Generate (a picture from "
                        "nothing): leave some cells to keep")
    schedule = subset_schedule(replace(spec, grid=grid), mask.cells)
    fillers = slot_layout(schedule).num_fillers
    if fillers > preset.args.num_fillers:
        raise UnsupportedSchedule(f"{spec.label} needs {fillers} learnable transition tokens; "
                                  f"{preset.name} has {preset.args.num_fillers}")
    return EditPlan(schedule, _prefix(tokens, schedule, 0, preset))


def plan_branch(preset: ModelPreset, schedule: Schedule, tokens: np.ndarray,
                steps_done: int) -> EditPlan:
    """Continue a run of `schedule` whose `tokens` ([G*G]) are known for its first `steps_done`
    steps (and its kept cells), with new seeds. From step 0 only the kept cells are shared."""
    if not 0 <= steps_done < schedule.num_steps:
        raise EditError(f"step: branch from 0 to {schedule.num_steps - 1} steps done (the run "
                        f"has {schedule.num_steps}), not {steps_done}")
    return EditPlan(schedule, _prefix(tokens, schedule, steps_done, preset))


def _prefix(tokens: np.ndarray, schedule: Schedule, steps_done: int,
            preset: ModelPreset) -> Prefix:
    tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
    prefix = Prefix(tokens, steps_done)
    try:
        prefix.check(schedule, 1, preset.args.vocab_size)
    except ValueError as err:
        raise EditError(f"tokens: {err}") from None
    return prefix


def run_plan(model: Transformer, plan: EditPlan, class_ids: Sequence[int],
             config: SamplingConfig, **step_options) -> Iterator[StepEvent]:
    """One StepEvent per step run (steps plan.prefix.steps_done onwards; every row of the batch
    starts from the same prefix). `step_options`: sample_steps' fast / graphs."""
    return sample_steps(model, plan.schedule, class_ids, config, prefix=plan.prefix,
                        **step_options)
