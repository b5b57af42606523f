"""Figure 11 by the paper's estimator (estimator.py): how much more uncertain each cell is when
it is generated together with its step's group than when the same order runs one token per
step. Per cell q, the least-squares predictor sees

- in parallel: the cells of earlier steps within `context_radius` (Chebyshev distance) of q;
- one per step: those, and the cells of q's own step that come before it, wherever they are
  (a window would hide a distant group, whose cells lie 4 or more apart).

The window keeps the predictor small: with every earlier cell it has up to 2040 inputs for
about 3900 training pictures a fold. `context_radius_bounds` picks it by the bound it gives
(every predictor's bound is valid; the lowest is the best): on the shipped emoji, raster 1x
averages -6.05 nats at radius 1, -6.31 at 2, -6.36 at 3. The increase is the parallel bound
minus the one-per-step bound, in nats.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from par_demo.estimator import DependencyEstimator, bound_from_errors, out_of_fold_errors
from par_demo.orders import Schedule, ScheduleSpec, build_schedule

CONTEXT_RADIUS = 3  # the tightest raster 1x bound of radii 1-3 on the shipped emoji


class FoldGram:
    """[K, 1 + L*D, 1 + L*D] second moments of [1, every cell's feature] per fold: any
    predictor set's least-squares fit and out-of-fold error are blocks of it."""

    def __init__(self, estimator: DependencyEstimator):
        N, L, D = estimator.features.shape
        x = np.concatenate([np.ones((N, 1)), estimator.flat], axis=1)
        self.gram = np.stack([x[estimator.fold == k].T @ x[estimator.fold == k]
                              for k in range(estimator.config.folds)])
        self.estimator, self.dim = estimator, D

    def columns(self, cells: np.ndarray) -> np.ndarray:
        D = self.dim
        return (1 + np.asarray(cells, dtype=np.int64)[:, None] * D + np.arange(D)).ravel()

    def bound(self, target: int, given: np.ndarray) -> tuple[float, np.ndarray]:
        """The bound of `target` given the cells `given`: pooled (nats) and [K] fold by fold."""
        x = np.concatenate([[0], self.columns(given)])
        y = self.columns(np.array([target]))
        g = self.gram
        xx = g[:, x][:, :, x]
        xy = g[:, x][:, :, y][:, :, None, :]
        yy = g[:, y][:, :, y][:, None]
        est = self.estimator
        bound = bound_from_errors(out_of_fold_errors(xx, xy, yy, est.ridge_per_fold()),
                                  est.counts, est.config.variance_floor)
        return float(bound.entropy[0]), bound.per_fold[:, 0]


def within(grid: int, cell: int, cells: np.ndarray, radius: int | None) -> np.ndarray:
    """The cells within Chebyshev `radius` of `cell` (all of them for None)."""
    if radius is None:
        return cells
    r, c = divmod(cell, grid)
    near = np.maximum(abs(cells // grid - r), abs(cells % grid - c)) <= radius
    return cells[near]


@dataclass(frozen=True)
class EstimatedIncrease:
    """Figure 11 for one ordering; maps are [G, G] nats of the Gaussian bound."""

    spec: ScheduleSpec
    pictures: int
    context_radius: int | None
    parallel_entropy: np.ndarray  # bound of each cell given the earlier steps
    sequential_entropy: np.ndarray  # ... given every cell before it in the same order
    fold_mean_increase: np.ndarray  # [K] the map's mean increase, fold by fold

    @property
    def increase(self) -> np.ndarray:
        return self.parallel_entropy - self.sequential_entropy

    @property
    def mean_increase(self) -> float:
        return float(self.increase.mean())

    @property
    def error(self) -> float:
        """Two standard errors of the mean increase across the folds."""
        k = len(self.fold_mean_increase)
        return float(2 * self.fold_mean_increase.std(ddof=1) / np.sqrt(k))


def _conditioning(schedule: Schedule) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per cell (flat index): the cells known to it in parallel and one per step."""
    L = schedule.grid * schedule.grid
    parallel, sequential = [np.empty(0, np.int64)] * L, [np.empty(0, np.int64)] * L
    done: list[int] = []
    for step in schedule.steps:
        for i, q in enumerate(step):
            parallel[q] = np.array(done, dtype=np.int64)
            sequential[q] = np.asarray(step[:i], dtype=np.int64)
        done.extend(int(q) for q in step)
    return parallel, sequential


def entropy_increase(gram: FoldGram, spec: ScheduleSpec,
                     context_radius: int | None = CONTEXT_RADIUS) -> EstimatedIncrease:
    """Per cell, the bound generated with its step's group minus one token per step."""
    G = gram.estimator.grid
    if spec.grid != G:
        raise ValueError(f"the ordering is for a {spec.grid}x{spec.grid} grid, the pictures' is "
                         f"{G}x{G}")
    parallel_sets, sequential_sets = _conditioning(build_schedule(spec))
    K = gram.estimator.config.folds
    par, seq = np.zeros(G * G), np.zeros(G * G)
    par_folds, seq_folds = np.zeros((K, G * G)), np.zeros((K, G * G))
    for q in range(G * G):
        par_given = within(G, q, parallel_sets[q], context_radius)
        seq_given = np.concatenate([par_given, sequential_sets[q]])
        par[q], par_folds[:, q] = gram.bound(q, par_given)
        if len(seq_given) == len(par_given):  # nothing of its step comes before it
            seq[q], seq_folds[:, q] = par[q], par_folds[:, q]
        else:
            seq[q], seq_folds[:, q] = gram.bound(q, seq_given)
    return EstimatedIncrease(spec=spec, pictures=gram.estimator.pictures,
                             context_radius=context_radius,
                             parallel_entropy=par.reshape(G, G),
                             sequential_entropy=seq.reshape(G, G),
                             fold_mean_increase=(par_folds - seq_folds).mean(1))


def context_radius_bounds(gram: FoldGram, radii: tuple[int | None, ...]) -> dict:
    """The mean raster 1x bound (each cell given every cell before it) for each context radius:
    the tightest (lowest) is the best predictor of the set, since every one is a valid bound."""
    G = gram.estimator.grid
    before, _ = _conditioning(build_schedule(ScheduleSpec(grid=G, order="raster", parallel=1)))
    return {r: float(np.mean([gram.bound(q, within(G, q, before[q], r))[0]
                              for q in range(G * G)])) for r in radii}
