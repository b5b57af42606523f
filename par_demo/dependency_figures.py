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
from par_demo.estimator import EstimatedMap
from par_demo.estimator_orders import EstimatedIncrease

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
    heat_axes[2].set_xlabel("blue: less sure once this picture's\ntoken is known", fontsize=8)
    for ax in heat_axes:
        _mark(ax, result.cell)
    condition = "unconditional" if result.class_id is None else f"class {result.class_id}"
    fig.suptitle(f"What knowing cell {result.cell[0]},{result.cell[1]} tells about every other "
                 f"cell ({condition})", fontsize=10)
    fig.tight_layout()
    return _to_image(fig)


def negative_note(information: np.ndarray, error: float) -> str:
    """What the drawing does with information below 0, which the true value never is."""
    values = information[np.isfinite(information)]
    below, beyond = (values < 0).sum(), (values < -error).sum()
    if beyond:
        return (f"{beyond} cells below -{error:.3f} nats, beyond the estimation error: "
                f"drawn blue, the error is understated there")
    if below:
        return (f"{below} cells below 0 (lowest {values.min():.3f}) within the\nestimation "
                f"error of {error:.3f} nats: drawn as 0")
    return f"estimation error {error:.3f} nats; none below 0"


def draw_estimated_map(result: EstimatedMap) -> Image.Image:
    """Figure 9 by the paper's estimator: each cell's prior bound, its bound given the reference
    cell (one shared scale) and the information, with negatives within the error drawn as 0."""
    fig = Figure(figsize=(PANEL_INCHES * 3, PANEL_INCHES * 1.15))
    axes = fig.subplots(1, 3)
    low = float(np.nanmin([result.prior_entropy.min(), np.nanmin(result.entropy)]))
    high = float(np.nanmax([result.prior_entropy.max(), np.nanmax(result.entropy)]))
    _heat(fig, axes[0], result.prior_entropy, "prior bound", ENTROPY_CMAP, vmin=low, vmax=high)
    _heat(fig, axes[1], result.entropy, "bound given the cell", ENTROPY_CMAP, vmin=low, vmax=high)
    information = result.information
    drawn = np.where((information < 0) & (information >= -result.error), 0.0, information)
    _heat(fig, axes[2], drawn, "information (prior - given)", CHANGE_CMAP,
          norm=_symmetric_norm(drawn))
    axes[2].set_xlabel(negative_note(information, result.error), fontsize=7)
    for ax in axes:
        _mark(ax, result.cell)
    fig.suptitle(f"What cell {result.cell[0]},{result.cell[1]} tells about every other cell, over "
                 f"{result.pictures} real pictures (the paper's estimator; Gaussian bounds, nats)",
                 fontsize=9)
    fig.tight_layout()
    return _to_image(fig)


def _increase_panels(increases: list[np.ndarray], titles: list[str], xlabels: list[str],
                     suptitle: str) -> Image.Image:
    """One map per ordering on one diverging scale."""
    if not increases:
        raise ValueError("an entropy-increase figure needs at least one result")
    norm = _symmetric_norm(np.stack(increases))
    cols = min(4, len(increases))
    rows = -(-len(increases) // cols)
    fig = Figure(figsize=(PANEL_INCHES * cols, PANEL_INCHES * 1.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    for ax, increase, title, xlabel in zip(axes, increases, titles, xlabels):
        _heat(fig, ax, increase, title, CHANGE_CMAP, norm=norm)
        ax.set_xlabel(xlabel, fontsize=8)
    for ax in axes[len(increases):]:
        ax.axis("off")
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return _to_image(fig)


def draw_estimated_increase(results: list[EstimatedIncrease]) -> Image.Image:
    """Figure 11 by the paper's estimator: each cell's bound generated with its step's group minus
    one token per step, per ordering."""
    return _increase_panels(
        [r.increase for r in results],
        [f"{r.spec.label}\nmean {r.mean_increase:+.3f} \u00b1 {r.error:.4f} nats" for r in results],
        ["" for _ in results],
        f"Entropy-bound increase over the same order one token per step, "
        f"{results[0].pictures if results else 0} real pictures (the paper's estimator)")


def draw_entropy_increase(results: list[EntropyIncrease]) -> Image.Image:
    """One map per ordering on one diverging scale: each cell's entropy when generated in
    parallel minus when the same order runs one token per step, with the means and losses."""
    baseline = results[0].baseline if results else ""
    return _increase_panels(
        [r.increase for r in results],
        [f"{r.spec.label}\nmean {r.mean_increase:+.3f} nats" for r in results],
        [f"loss {r.parallel_loss:.3f} ({r.baseline} {r.sequential_loss:.3f})" for r in results],
        f"Entropy increase over "
        f"{'the same order one token per step' if baseline == 'same order' else baseline}, "
        f"{results[0].pictures if results else 0} pictures, teacher-forced")
