"""The steps of PAR's rival orderings on a G x G grid, as lists of flat cells (row * G + col).

- ZipAR (arXiv 2412.04062, its released LlamaGen code): row 0 whole, one token per step; then
  row r + 1 starts once row r holds `w` tokens, and every step takes the next token of each
  active row. Row 0 takes steps 0..G-1, row r >= 1 starts at step G + (r - 1) w, so the last row
  ends at step G + (G - 2) w + G - 1: 2G + (G - 2) w steps for G >= 2 (224 at G = 24, w = 8).
  w = G is raster 1x; w = 1 is a diagonal wavefront after the first row (3G - 2 steps).
- the diagonal wavefront (NAR): step d takes every cell with row + col = d, 2G - 1 steps.
- random-cosine (RandAR): a seeded permutation, in S steps of growing size; after step s,
  floor((1 - cos(pi/2 (s + 1) / S)) N) + 1 of the N cells are done (at most N), raised where
  needed so that every step takes at least one cell.

The cells of a step are listed by row (ZipAR, diagonal) or in the permutation's order.
"""
from __future__ import annotations

import math

import numpy as np


def zipar_row_starts(grid: int, window: int) -> np.ndarray:
    """[G] the step at which each row's first token is generated."""
    rows = np.arange(grid)
    return np.where(rows == 0, 0, grid + (rows - 1) * window)


def zipar_step_count(grid: int, window: int) -> int:
    """2G + (G - 2) w for G >= 2; a 1 x 1 grid takes one step."""
    return 1 if grid == 1 else 2 * grid + (grid - 2) * window


def zipar_steps(grid: int, window: int) -> tuple[np.ndarray, ...]:
    starts = zipar_row_starts(grid, window)
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    return _group_by_step(starts[rows] + cols)


def diagonal_steps(grid: int) -> tuple[np.ndarray, ...]:
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    return _group_by_step(rows + cols)


def cosine_done(cells: int, steps: int) -> np.ndarray:
    """[S] cells done after each step: RandAR's cosine rule, each step taking at least one
    cell and leaving at least one for each later step."""
    s = np.arange(steps)
    done = np.floor((1 - np.cos(math.pi / 2 * (s + 1) / steps)) * cells).astype(np.int64) + 1
    # done - s never falling means every step takes a cell; capping it leaves one per later step
    excess = np.minimum(np.maximum.accumulate(done - s), cells - steps + 1)
    return s + excess


def cosine_steps(grid: int, steps: int, seed: int) -> tuple[np.ndarray, ...]:
    cells = grid * grid
    order = np.random.default_rng(seed).permutation(cells)
    bounds = np.concatenate([[0], cosine_done(cells, steps)])
    return tuple(order[a:b] for a, b in zip(bounds[:-1], bounds[1:]))


def _group_by_step(step_of_cell: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cells grouped by their step, each group in raster (row by row) order."""
    order = np.argsort(step_of_cell, kind="stable")
    bounds = np.flatnonzero(np.diff(step_of_cell[order])) + 1
    return tuple(np.split(order, bounds))
