"""Generation orders: which grid cells each step generates.

A schedule for a G x G token grid is a list of steps; each step is the array of flat cell
indices (row * G + col) generated together, in slot order. A schedule may cover only some cells
(`subset_schedule`, for edits): the others are kept, known before the first step. Pure numpy, no
torch.

Besides PAR's orders (raster, distant, random: `parallel` tokens per step) come its rivals, each
with its own step sizes: ZipAR's row window, the diagonal wavefront and a random order on a
cosine schedule (rivals.py lays out their steps).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from par_demo.rivals import cosine_steps, diagonal_steps, zipar_steps

PAR_ORDERS = ("raster", "distant", "random")  # n tokens per step; these also order edits
RIVAL_ORDERS = ("zipar", "diagonal", "random-cosine")  # step sizes of their own
ORDERS = PAR_ORDERS + RIVAL_ORDERS


class ScheduleError(ValueError):
    """A schedule that cannot exist (bad parallelism, regions that do not tile the grid...);
    `field` names the ScheduleSpec field at fault where one is (a CLI or form names its own)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ScheduleSpec:
    grid: int  # tokens per side
    order: str = "distant"  # one of ORDERS
    parallel: int = 4  # tokens per parallel step (n); 1 for the rival orders
    init_tokens: bool = True  # generate the first n tokens one per step (PAR's Stage 1)
    regions: int | None = None  # distant: regions per side; None = sqrt(n), or 2 when n == 1
    seed: int = 0  # random and random-cosine orders only
    window: int | None = None  # zipar only: row r+1 starts once row r has this many tokens
    steps: int | None = None  # random-cosine only: the number of steps S

    @property
    def regions_per_side(self) -> int:
        if self.regions is not None:
            return self.regions
        if self.parallel == 1:
            return 2
        return math.isqrt(self.parallel)

    @property
    def slug(self) -> str:
        """The ordering in a file name: distant-4x, distant-4x-noinit, zipar-w3, diagonal,
        random-cosine-s31."""
        if self.order == "zipar":
            return f"zipar-w{self.window}"
        if self.order == "random-cosine":
            return f"random-cosine-s{self.steps}"
        if self.order == "diagonal":
            return "diagonal"
        init = "" if self.parallel == 1 or self.init_tokens else "-noinit"
        return f"{self.order}-{self.parallel}x{init}"

    @property
    def label(self) -> str:
        if self.order == "zipar":
            return f"zipar, window {self.window}"
        if self.order == "diagonal":
            return "diagonal wavefront"
        if self.order == "random-cosine":
            return f"random-cosine, {self.steps} steps"
        if self.parallel == 1:
            return f"{self.order} 1x"
        init = "with" if self.init_tokens else "without"
        return f"{self.order} {self.parallel}x, {init} initial tokens"


def par_sequence_order(grid: int, regions: int) -> np.ndarray:
    """The official PAR token order: relative position first, then region.

    Sequence index ((lr*R + lc)*s + r1)*s + r2 holds cell (r1*R + lr, r2*R + lc),
    with s regions per side and region side R = grid / s.
    """
    s = regions
    side = grid // s
    lr, lc, r1, r2 = np.meshgrid(
        np.arange(side), np.arange(side), np.arange(s), np.arange(s), indexing="ij"
    )
    rows = r1 * side + lr
    cols = r2 * side + lc
    return (rows * grid + cols).reshape(-1)


def _validate(spec: ScheduleSpec) -> None:
    if spec.order not in ORDERS:
        raise ScheduleError(f"unknown order {spec.order!r}; choose one of {', '.join(ORDERS)}")
    if spec.grid < 1:
        raise ScheduleError(f"grid must be at least 1, got {spec.grid}")
    validate_rival_fields(spec)
    if spec.order in RIVAL_ORDERS:
        return
    n, cells = spec.parallel, spec.grid * spec.grid
    if n < 1:
        raise ScheduleError(f"parallelism must be at least 1, got {n}")
    if cells % n:
        raise ScheduleError(f"{n} tokens per step do not divide a {spec.grid}x{spec.grid} grid")
    if spec.order == "distant":
        if n > 1 and math.isqrt(n) ** 2 != n:
            raise ScheduleError(f"distant order needs a square parallelism (n regions), got n={n}")
        s = spec.regions_per_side
        if s < 1 or spec.grid % s:
            raise ScheduleError(
                f"{s} regions per side do not divide a {spec.grid}x{spec.grid} grid"
            )
        if n > 1 and s * s != n:
            raise ScheduleError(f"distant {n}x needs {math.isqrt(n)} regions per side, got {s}")


def cell_order(spec: ScheduleSpec) -> np.ndarray:
    """All cells in the order they are generated."""
    cells = spec.grid * spec.grid
    if spec.order == "raster":
        return np.arange(cells)
    if spec.order == "distant":
        return par_sequence_order(spec.grid, spec.regions_per_side)
    return np.random.default_rng(spec.seed).permutation(cells)


@dataclass(frozen=True)
class Schedule:
    spec: ScheduleSpec
    steps: tuple[np.ndarray, ...] = field(repr=False)

    @property
    def grid(self) -> int:
        return self.spec.grid

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    @property
    def sizes(self) -> list[int]:
        return [len(s) for s in self.steps]

    @property
    def one_token_per_step(self) -> bool:
        """The baseline a speedup is measured against (raster 1x, random 1x, zipar at w = G)."""
        return self.num_steps == len(self.sequence)

    @property
    def num_init_steps(self) -> int:
        """Steps of the sequential initial tokens (0 when there are none)."""
        if self.spec.parallel > 1 and self.spec.init_tokens:
            return min(self.spec.parallel, len(self.sequence))
        return 0

    @cached_property
    def kept_cells(self) -> np.ndarray:
        """Cells no step generates (known before the first step), in raster order."""
        generated = np.zeros(self.grid * self.grid, dtype=bool)
        generated[self.sequence] = True
        return np.flatnonzero(~generated)

    @cached_property
    def sequence(self) -> np.ndarray:
        return np.concatenate(self.steps)

    @cached_property
    def step_of_cell(self) -> np.ndarray:
        """[grid, grid] step index that generates each cell; -1 for kept cells."""
        out = np.full(self.grid * self.grid, -1, dtype=np.int64)
        for i, cells in enumerate(self.steps):
            out[cells] = i
        return out.reshape(self.grid, self.grid)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        return len(self.steps) == len(other.steps) and all(
            np.array_equal(a, b) for a, b in zip(self.steps, other.steps)
        )

    def __hash__(self) -> int:
        return hash((self.sequence.tobytes(), tuple(self.sizes)))


def validate_rival_fields(spec: ScheduleSpec) -> None:
    """Each rival's own field is given for it and for no other order."""
    cells = spec.grid * spec.grid
    if spec.order in RIVAL_ORDERS and spec.parallel != 1:
        raise ScheduleError(f"parallelism applies to {', '.join(PAR_ORDERS)}; {spec.order} sets "
                            f"its own step sizes (leave parallelism at 1, got {spec.parallel})",
                            "parallel")
    if (spec.window is not None) != (spec.order == "zipar"):
        raise ScheduleError("window applies to the zipar order only" if spec.window is not None
                            else "the zipar order needs a window", "window")
    if spec.order == "zipar" and not 1 <= spec.window <= spec.grid:
        raise ScheduleError(f"window must be 1 to {spec.grid} (the grid side), got {spec.window}",
                            "window")
    if (spec.steps is not None) != (spec.order == "random-cosine"):
        raise ScheduleError("steps applies to the random-cosine order only"
                            if spec.steps is not None else "the random-cosine order needs steps",
                            "steps")
    if spec.order == "random-cosine" and not 1 <= spec.steps <= cells:
        raise ScheduleError(f"steps must be 1 to {cells} (one cell per step at most), "
                            f"got {spec.steps}", "steps")


def validated_spec(spec: ScheduleSpec) -> ScheduleSpec:
    """`spec` when its rival fields fit its order; else ScheduleError naming the field. (Whether
    the rest fits the grid is build_schedule's and subset_schedule's to say.)"""
    if spec.order not in ORDERS:
        raise ScheduleError(f"unknown order {spec.order!r}; choose one of {', '.join(ORDERS)}")
    validate_rival_fields(spec)
    return spec


def build_schedule(spec: ScheduleSpec) -> Schedule:
    _validate(spec)
    if spec.order == "zipar":
        return Schedule(spec, zipar_steps(spec.grid, spec.window))
    if spec.order == "diagonal":
        return Schedule(spec, diagonal_steps(spec.grid))
    if spec.order == "random-cosine":
        return Schedule(spec, cosine_steps(spec.grid, spec.steps, spec.seed))
    order = cell_order(spec)
    n = spec.parallel
    if n == 1:
        return Schedule(spec, tuple(order[i : i + 1] for i in range(len(order))))
    head: list[np.ndarray] = []
    rest = order
    if spec.init_tokens:
        head = [order[i : i + 1] for i in range(n)]
        rest = order[n:]
    steps = head + [rest[i : i + n] for i in range(0, len(rest), n)]
    return Schedule(spec, tuple(steps))


def region_bounds(grid: int, cells: np.ndarray, regions: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column edges ([regions + 1] each) of the regions of a set of cells: their bounding
    box cut into regions x regions tiles (edge i at i * side // regions). For the whole grid these
    are PAR's regions."""
    rows, cols = np.divmod(np.asarray(cells), grid)
    r0, c0 = rows.min(), cols.min()
    height, width = rows.max() - r0 + 1, cols.max() - c0 + 1
    k = np.arange(regions + 1)
    return r0 + k * height // regions, c0 + k * width // regions


def _subset_order(spec: ScheduleSpec, cells: np.ndarray) -> np.ndarray:
    if spec.order == "raster":
        return cells
    if spec.order == "random":
        return np.random.default_rng(spec.seed).permutation(cells)
    s = spec.regions_per_side
    row_edges, col_edges = region_bounds(spec.grid, cells, s)
    rows, cols = np.divmod(cells, spec.grid)
    region = (np.searchsorted(row_edges, rows, side="right") - 1) * s + (
        np.searchsorted(col_edges, cols, side="right") - 1)
    rank = np.empty_like(cells)  # place of each cell among its region's cells, in raster order
    for r in np.unique(region):
        members = region == r
        rank[members] = np.arange(members.sum())
    return cells[np.lexsort((region, rank))]


def subset_schedule(spec: ScheduleSpec, cells: np.ndarray) -> Schedule:
    """`spec`'s ordering over `cells` only; every other cell is kept (known before step 0).

    - raster: the cells in raster order; random: a seeded permutation of them.
    - distant: the regions are the cells' bounding box cut into s x s tiles (`region_bounds`);
      each region's cells are ranked in raster order, and the sequence takes rank 0 of every
      region (region by region), then rank 1, and so on. When every region holds as many cells
      (the presets: halves, centre, border), each parallel step takes one cell per region, as
      PAR does; otherwise the later steps take several cells of the larger regions.
    - initial tokens: the first n cells of that sequence, one per step (for distant, the first
      cell of each region).
    - the rest goes n per step; when n does not divide it, the first parallel step takes the
      remainder (steps may grow, never shrink: see models/slots.py).
    Over all cells this is build_schedule(spec).
    """
    _validate_subset(spec, cells)
    order = _subset_order(spec, np.unique(np.asarray(cells, dtype=np.int64)))
    n = spec.parallel
    head = min(n, len(order)) if (n > 1 and spec.init_tokens) else 0
    steps = [order[i:i + 1] for i in range(head)]
    rest = order[head:]
    first = len(rest) % n or min(n, len(rest))
    if len(rest):
        steps.append(rest[:first])
    steps += [rest[i:i + n] for i in range(first, len(rest), n)]
    return Schedule(spec, tuple(steps))


def _validate_subset(spec: ScheduleSpec, cells: np.ndarray) -> None:
    if spec.order not in PAR_ORDERS:
        raise ScheduleError(f"unknown order {spec.order!r} for a region; choose one of "
                            f"{', '.join(PAR_ORDERS)}")
    if spec.grid < 1 or spec.parallel < 1:
        raise ScheduleError(f"grid and parallelism must be at least 1, got {spec.grid} and "
                            f"{spec.parallel}")
    if spec.order == "distant" and spec.parallel > 1 and (
            math.isqrt(spec.parallel) ** 2 != spec.parallel
            or spec.regions_per_side ** 2 != spec.parallel):
        raise ScheduleError(f"distant {spec.parallel}x needs a square parallelism and "
                            f"{math.isqrt(spec.parallel)} regions per side")
    cells = np.asarray(cells)
    if cells.size == 0:
        raise ScheduleError("no cell to generate")
    if cells.min() < 0 or cells.max() >= spec.grid * spec.grid:
        raise ScheduleError(f"cells must lie on the {spec.grid}x{spec.grid} grid "
                            f"(0 to {spec.grid * spec.grid - 1})")
