"""Teacher forcing under a mixture of schedules: per example, the inputs, targets and group-wise
attention mask of that example's schedule, in exactly the slot layout the sampler uses.

Every layout of a G x G grid has G*G slots (models/slots.py), so layouts stack: the bank holds each
mixture schedule's slot arrays as one row, and a batch gathers one row per example.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from par_demo.models.slots import slot_layout
from par_demo.models.transformer import SlotInputs
from par_demo.orders import Schedule, ScheduleSpec, build_schedule
from par_demo.train.config import ScheduleMixture


@dataclass
class LayoutBank:
    """Slot layouts stacked by row: kind, cell, filler, target [K, S]; mask [K, S, S]."""

    schedules: tuple[Schedule, ...]
    kind: torch.Tensor
    cell: torch.Tensor
    filler: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    is_random: torch.Tensor  # [K] bool: a random-order row

    @property
    def num_fillers(self) -> int:
        return int(self.filler.max()) + 1 if self.filler.numel() else 0

    def to(self, device) -> "LayoutBank":
        return LayoutBank(self.schedules, *(t.to(device) for t in (
            self.kind, self.cell, self.filler, self.target, self.mask, self.is_random)))


def layout_bank(schedules: list[Schedule], is_random: list[bool] | None = None) -> LayoutBank:
    layouts = [slot_layout(s) for s in schedules]

    def stack(name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(lay, name) for lay in layouts]))

    return LayoutBank(
        schedules=tuple(schedules), kind=stack("kind"), cell=stack("cell"),
        filler=stack("filler"), target=stack("target"),
        mask=torch.from_numpy(np.stack([lay.block_causal_mask() for lay in layouts])),
        is_random=torch.tensor(is_random or [False] * len(schedules)))


def random_specs(grid: int, count: int) -> list[ScheduleSpec]:
    """Random orders cycling through 1x, 4x and 16x, with and without initial tokens."""
    return [ScheduleSpec(grid=grid, order="random", parallel=(1, 4, 16)[i % 3],
                         init_tokens=(i // 3) % 2 == 0, seed=i) for i in range(count)]


def mixture_bank(mixture: ScheduleMixture) -> LayoutBank:
    fixed = [build_schedule(s) for s in mixture.specs]
    randoms = random_specs(mixture.specs[0].grid, mixture.random_pool)
    extra = [build_schedule(s) for s in randoms] if mixture.random_share else []
    return layout_bank(fixed + extra, [False] * len(fixed) + [True] * len(extra))


def draw_rows(bank: LayoutBank, batch: int, random_share: float,
              generator: torch.Generator) -> torch.Tensor:
    """[B] bank rows: a random-order row with probability random_share, else a fixed one."""
    fixed = torch.nonzero(~bank.is_random.cpu()).flatten()
    randoms = torch.nonzero(bank.is_random.cpu()).flatten()
    pick_fixed = fixed[torch.randint(len(fixed), (batch,), generator=generator)]
    if not len(randoms):
        return pick_fixed
    pick_random = randoms[torch.randint(len(randoms), (batch,), generator=generator)]
    use_random = torch.rand(batch, generator=generator) < random_share
    return torch.where(use_random, pick_random, pick_fixed)


@dataclass
class TeacherForcingBatch:
    cond: torch.Tensor  # [B] class ids (num_classes = the null class)
    tokens: torch.Tensor  # [B, S] token fed at each slot (0 where a slot feeds no token)
    slots: SlotInputs  # [B, S] each
    mask: torch.Tensor  # [B, S, S] bool, slot a sees slot b
    targets: torch.Tensor  # [B, S] token each slot predicts

    def first_slots(self, count: int) -> "TeacherForcingBatch":
        """The first `count` slots of every sequence: what a query of its first steps needs."""
        s = self.slots
        return TeacherForcingBatch(
            cond=self.cond, tokens=self.tokens[:, :count],
            slots=SlotInputs(*(t[:, :count] for t in (s.kind, s.cell, s.filler, s.target))),
            mask=self.mask[:, :count, :count], targets=self.targets[:, :count])


def teacher_forcing_batch(grids_BL: torch.Tensor, cond_B: torch.Tensor, rows_B: torch.Tensor,
                          bank: LayoutBank) -> TeacherForcingBatch:
    """The ground-truth token grids [B, G*G] laid out by each example's schedule row."""
    rows = rows_B.to(bank.kind.device)
    cell, target = bank.cell[rows], bank.target[rows]
    return TeacherForcingBatch(
        cond=cond_B,
        tokens=torch.gather(grids_BL, 1, cell.clamp(min=0)),
        slots=SlotInputs(bank.kind[rows], cell, bank.filler[rows], target),
        mask=bank.mask[rows],
        targets=torch.gather(grids_BL, 1, target),
    )
