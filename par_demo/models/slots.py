"""How a schedule becomes the transformer's input sequence (its slots).

Step t is predicted by the slots of step t: the tokens generated at step t-1 (the class token for
t = 0), followed by learnable filler tokens when step t generates more tokens than step t-1 did.
Slot j of step t predicts the j-th cell of step t, so a schedule whose steps never shrink takes
G*G slots and the last step's tokens are never fed back. For PAR's distant order with initial
tokens this is exactly the official sequence: [class, x_0 .. x_{n-1}, n-1 learnable tokens, x_n,
...].

A step smaller than the one before (ZipAR's and the diagonal's last rows, random-cosine's rounding)
still feeds every token of the step before: the slots past its own cells only feed (their
predictions are dropped), so the cache holds every generated token. They repeat the step's targets
(an any-order model never saw a slot without one), and only the target-aware model runs them.

A schedule with kept cells (an edit) is preceded by one step per kept cell, in raster order: its
known tokens are teacher-forced, so they enter the cache in one forward (a chain of single steps
is what a random 1x order looks like to an any-order model) and the schedule's steps follow.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from par_demo.orders import Schedule

CLASS, TOKEN, FILLER = 0, 1, 2


@dataclass(frozen=True)
class SlotLayout:
    kind: np.ndarray  # [S] CLASS / TOKEN / FILLER
    cell: np.ndarray  # [S] cell whose token is fed (TOKEN slots), -1 otherwise
    filler: np.ndarray  # [S] learnable-token index (FILLER slots), 0 otherwise
    target: np.ndarray  # [S] cell this slot predicts
    step: np.ndarray  # [S] step whose tokens this slot predicts
    starts: np.ndarray  # [kept_steps + num_steps + 1] first slot of each step
    predicting: np.ndarray  # [kept_steps + num_steps] slots of each step that predict a cell
    kept_steps: int = 0  # steps of kept cells before the schedule's step 0
    # Set by layouts that read a token away from the slot's position (raster_slots.py): the cell
    # whose token each slot feeds, and what each slot sees ([S, S]); None: `cell`, block-causal
    source: np.ndarray | None = None
    sees: np.ndarray | None = None

    @property
    def length(self) -> int:
        """Slots in the whole sequence: G*G, plus one feed-only slot per cell a step shrinks."""
        return self.kind.size

    @property
    def fed(self) -> np.ndarray:
        """[S] the cell whose token each slot feeds (-1 for class and filler slots)."""
        return self.cell if self.source is None else self.source

    @property
    def num_fillers(self) -> int:
        """Learnable tokens the layout needs (the size of the model's table must cover it)."""
        used = self.filler[self.kind == FILLER]
        return int(used.max()) + 1 if used.size else 0

    def block_causal_mask(self) -> np.ndarray:
        """[S, S] bool: slot a sees slot b when b's step is not later than a's (or as `sees`
        says)."""
        if self.sees is not None:
            return self.sees
        return self.step[None, :] <= self.step[:, None]

    def visible(self, s0: int, s1: int) -> np.ndarray:
        """[s1 - s0, s1] bool: what slots s0..s1-1 see of slots 0..s1-1 (block_causal_mask's
        rows), for a forward that computes several steps' slots at once."""
        if self.sees is not None:
            return self.sees[s0:s1, :s1]
        return self.step[None, :s1] <= self.step[s0:s1, None]


def slot_layout(schedule: Schedule) -> SlotLayout:
    kind, cell, filler, target, step = [], [], [], [], []
    starts, predicting = [0], []
    fed = np.array([-1])  # the class token feeds step 0
    kept = [schedule.kept_cells[i:i + 1] for i in range(len(schedule.kept_cells))]
    for t, cells in enumerate(kept + list(schedule.steps)):
        extra = max(len(cells) - len(fed), 0)
        kind += [CLASS if t == 0 else TOKEN] * len(fed) + [FILLER] * extra
        cell += list(fed) + [-1] * extra
        filler += [0] * len(fed) + list(range(extra))
        size = len(fed) + extra
        target += [cells[j % len(cells)] for j in range(size)]
        step += [t] * size
        starts.append(starts[-1] + size)
        predicting.append(len(cells))
        fed = cells
    return SlotLayout(
        kind=np.array(kind, dtype=np.int64),
        cell=np.array(cell, dtype=np.int64),
        filler=np.array(filler, dtype=np.int64),
        target=np.array(target, dtype=np.int64),
        step=np.array(step, dtype=np.int64),
        starts=np.array(starts, dtype=np.int64),
        predicting=np.array(predicting, dtype=np.int64),
        kept_steps=len(kept),
    )
