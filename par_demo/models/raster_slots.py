"""ZipAR on a raster model, training-free: the slots of a ZipAR schedule for a model that always
predicts the next cell in raster order (LlamaGen; its slots carry no target).

A slot at position q (fed the token of cell q, with q's rotary position) predicts cell q + 1, so
cell (r, c) is predicted from (r, c - 1), and a row's first cell from the last cell of the row
above. ZipAR starts row r (r >= 2) while row r - 1 is still short of its last cell; its released
code (LlamaGen-ZipAR generate_zipar.py) then feeds a stand-in at that cell's position: a copy of
the newest token of row r - 2 (the cell above the missing one once row r - 2 is whole). When row
r - 1 finishes, the next step feeds its real last token at the same position, predicting nothing.

What each slot sees. The released code writes every token into a cache indexed by raster position
and masks causally by position, so a query also sees the cache rows of cells not generated yet
(zeros, or the stand-in until the real token overwrites it). Here a slot sees only what is known:
the class token and the real tokens already fed at positions up to its own, never a stand-in other
than itself. A query thus reads exactly what a raster model would read of the cells generated so
far, with the missing ones left out rather than zero-filled.
"""
from __future__ import annotations

import numpy as np

from par_demo.models.slots import CLASS, TOKEN, SlotLayout
from par_demo.orders import Schedule


def zipar_raster_layout(schedule: Schedule) -> SlotLayout:
    G = schedule.grid
    step_of = schedule.step_of_cell.reshape(-1)
    kind, position, source, target, step, stand_in = [], [], [], [], [], []
    starts, predicting = [0], []

    def add(t: int, k: int, q: int, fed: int, predicts: int, standing_in: bool = False) -> None:
        kind.append(k)
        position.append(q)
        source.append(fed)
        target.append(predicts)
        step.append(t)
        stand_in.append(standing_in)

    for t, cells in enumerate(schedule.steps):
        fed_now = set()
        for c in cells:
            q = int(c) - 1  # the raster predecessor; -1: the class token predicts cell 0
            if q < 0:
                add(t, CLASS, -1, -1, c)
            elif step_of[q] < t:
                add(t, TOKEN, q, q, c)
                fed_now.add(q)
            else:
                add(t, TOKEN, q, newest_of_row(schedule.step_of_cell, q // G - 1, t), c,
                    standing_in=True)
        made_before = np.flatnonzero(step_of == t - 1) if t else np.array([], dtype=np.int64)
        feed_only = [q for q in made_before if q not in fed_now]
        for q in feed_only:
            add(t, TOKEN, int(q), int(q), cells[0])
        starts.append(starts[-1] + len(cells) + len(feed_only))
        predicting.append(len(cells))

    position, step = np.array(position), np.array(step)
    stand_in = np.array(stand_in)
    sees = ((step[None, :] <= step[:, None]) & (position[None, :] <= position[:, None])
            & ~stand_in[None, :]) | np.eye(len(step), dtype=bool)
    return SlotLayout(
        kind=np.array(kind, dtype=np.int64), cell=position.astype(np.int64),
        filler=np.zeros(len(kind), dtype=np.int64), target=np.array(target, dtype=np.int64),
        step=step.astype(np.int64), starts=np.array(starts, dtype=np.int64),
        predicting=np.array(predicting, dtype=np.int64),
        source=np.array(source, dtype=np.int64), sees=sees)


def newest_of_row(step_of_GG: np.ndarray, row: int, t: int) -> int:
    """The cell of `row` generated last before step t (the stand-in ZipAR copies)."""
    G = step_of_GG.shape[1]
    steps = step_of_GG[row]
    return row * G + int(np.flatnonzero((steps >= 0) & (steps < t))[-1])
