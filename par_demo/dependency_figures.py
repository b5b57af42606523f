"""Drawing the dependency results (dependency.py) with their colour scales, in the spirit of the
paper's Figures 9 (entropy given a reference token) and 11 (entropy increase per ordering).

Matplotlib's object API (no pyplot): figures are drawn in worker threads of the app.
"""
from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from par_demo.dependency import DependencyMap, EntropyIncrease

PANEL_INCHES = 2.6
DPI = 100
ENTROPY_CMAP = "magma"  # the app's entropy colours: dark is certain
CHANGE_CMAP = "RdBu_r"  # red: entropy removed (information) or added (increase); white: none


def _to_image(fig: Figure) -> Image.Image:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return Image.open(buf).convert("RGB")


def _mark(ax, cell: tuple[int, int], colour: str = "#22d3ee") -> None:
    row, col = cell
    ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, lw=2, ec=colour))


def _heat(fig: Figure, ax, values_GG: np.ndarray, title: str, cmap: str, norm=None,
          vmin=None, vmax=None) -> None:
    im = ax.imshow(values_GG, cmap=cmap, norm=norm, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).set_label("nats", fontsize=8)


def _symmetric_norm(values: np.ndarray) -> TwoSlopeNorm:
    """A diverging scale centred on 0 that covers every finite value."""
    reach = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    reach = max(reach, 1e-3)
    return TwoSlopeNorm(vcenter=0.0, vmin=-reach, vmax=reach)


def draw_dependency(result: DependencyMap, picture_HW3: np.ndarray | None = None) -> Image.Image:
    """The picture (when given) with the clicked cell outlined, the prior entropy, the entropy
    given the clicked cell (one shared scale) and the information: their difference."""
    G = result.entropy.shape[0]
    panels = 3 + (picture_HW3 is not None)
    fig = Figure(figsize=(PANEL_INCHES * panels, PANEL_INCHES * 1.05))
    axes = fig.subplots(1, panels)
    if picture_HW3 is not None:
        ax = axes[0]
        ax.imshow(picture_HW3, extent=(-0.5, G - 0.5, G - 0.5, -0.5), interpolation="nearest")
        _mark(ax, result.cell)
        ax.set_title(f"picture, cell {result.cell[0]},{result.cell[1]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    heat_axes = axes[panels - 3:]
    given = result.entropy.copy()
    given[result.cell] = np.nan  # known: 0 by definition, not a model output
    top = float(np.nanmax([result.prior_entropy.max(), np.nanmax(given)]))
    _heat(fig, heat_axes[0], result.prior_entropy, "prior entropy", ENTROPY_CMAP, vmin=0, vmax=top)
    _heat(fig, heat_axes[1], given, "entropy given the cell", ENTROPY_CMAP, vmin=0, vmax=top)
    information = result.information.copy()
    information[result.cell] = np.nan
    _heat(fig, heat_axes[2], information, "information (prior - given)", CHANGE_CMAP,
          norm=_symmetric_norm(information))
    for ax in heat_axes:
        _mark(ax, result.cell)
    condition = "unconditional" if result.class_id is None else f"class {result.class_id}"
    fig.suptitle(f"What knowing cell {result.cell[0]},{result.cell[1]} tells about every other "
                 f"cell ({condition})", fontsize=10)
    fig.tight_layout()
    return _to_image(fig)


def draw_entropy_increase(results: list[EntropyIncrease]) -> Image.Image:
    """One map per ordering on one diverging scale: each cell's entropy when generated in
    parallel minus when the same order runs one token per step, with the means and losses."""
    if not results:
        raise ValueError("draw_entropy_increase needs at least one result")
    norm = _symmetric_norm(np.stack([r.increase for r in results]))
    cols = min(4, len(results))
    rows = -(-len(results) // cols)
    fig = Figure(figsize=(PANEL_INCHES * cols, PANEL_INCHES * 1.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    for ax, r in zip(axes, results):
        _heat(fig, ax, r.increase, f"{r.spec.label}\nmean {r.mean_increase:+.3f} nats",
              CHANGE_CMAP, norm=norm)
        ax.set_xlabel(f"loss {r.parallel_loss:.3f} ({r.baseline} {r.sequential_loss:.3f})",
                      fontsize=8)
    for ax in axes[len(results):]:
        ax.axis("off")
    baseline = ("the same order one token per step" if results[0].baseline == "same order"
                else results[0].baseline)
    fig.suptitle(f"Entropy increase over {baseline}, {results[0].pictures} pictures, "
                 "teacher-forced", fontsize=10)
    fig.tight_layout()
    return _to_image(fig)
