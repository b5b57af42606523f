"""The Measure tab: the paper's Figures 9 and 11 two ways, each labelled with what it is. First
the paper's own estimator over the shipped training emoji (estimator.py: Gaussian bounds of
least-squares residuals of codebook features), then what the embedded any-order model believes
about one held-out picture (dependency.py), with a sentence where the two disagree."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import gradio as gr
import numpy as np

from par_demo.dependency import (dependency_map, dependency_refusal, entropy_increase,
                                 information_rings)
from par_demo.dependency_figures import (draw_dependency, draw_entropy_increase,
                                         draw_estimated_increase, draw_estimated_map)
from par_demo.heldout import HeldoutGrids
from par_demo.orders import ScheduleSpec
from par_demo.presets import DEFAULT_MODEL, PRESETS, get_preset
from par_demo.preview import decode_tokens, enlarge
from par_demo.training_codes import shipped_maps, shipped_orderings
from par_demo.ui import views, widgets as w
from par_demo.ui.errors import friendly
from par_demo.ui.inputs import boolean, choice, number
from par_demo.ui.machine import MODELS

TITLE, TAB_ID = "Measure", "measure"
FIGURE11_PICTURES = 8  # held-out pictures the model averages: a few seconds per ordering
FIGURE11_PARALLEL = ("4x", "16x")
ORDERINGS = tuple((order, init) for order in ("distant", "raster") for init in (True, False))

EXPLAIN = """
**What these maps show.** PAR rests on one measurement: neighbouring tokens depend strongly on
each other, distant ones weakly (the paper's Figure 9), so generating distant tokens together
costs less than generating neighbours together (its Figure 11). Each is shown two ways:

1. **Over real emoji, by the paper's estimator** (its Sec. 8.1): the codebook features of the
   tokens of every training picture, a least-squares predictor of one cell's feature from the
   known cells', and the Gaussian bound on the entropy of what it misses. It describes the data,
   averaged over pictures; its nats bound the entropy of an 8-dimensional feature, so they can be
   negative, and only differences (information) are comparable with the model's.
2. **What this model believes about this picture**: the embedded model's entropy of each cell's
   token, with nothing known and once the clicked cell's token is known. It describes one
   picture and the model's calibration on a query (one known token) it was seldom trained on.

**Click a cell of the picture**: the estimator's map answers at once (precomputed), the model's
follows in 2-4 s on 2 CPU cores.
"""
@functools.lru_cache(maxsize=1)
def heldout() -> HeldoutGrids:
    return HeldoutGrids.load()


def picture_choices() -> list[tuple[str, int]]:
    grids, names = heldout(), get_preset(DEFAULT_MODEL).class_names()
    return [(f"{i}: {names.names[int(c)]} ({s})", i)
            for i, (c, s) in enumerate(zip(grids.labels, grids.style))]


def _picture(index) -> tuple[np.ndarray, int]:
    grids = heldout()
    i = number(index, "picture", 0, len(grids) - 1, integer=True)
    return grids.codes[i], int(grids.labels[i])


@dataclass
class Shown:
    picture: Any
    estimated: Any
    estimated_summary: Any
    map: Any
    summary: Any
    comparison: Any
    cell: Any


@friendly
def show_picture(index) -> Shown:
    codes, _ = _picture(index)
    loaded = MODELS.get(DEFAULT_MODEL)
    image = decode_tokens(loaded.tokenizer, codes.reshape(1, -1), codes.shape[0])[0]
    return Shown(enlarge(image, views.DISPLAY_PX), None,
                 "Click a cell of the picture to see what its token tells about the others.",
                 None, "", "", None)


def _rings_text(rings: dict[str, float]) -> str:
    return ", ".join(f"{v:.3f} at distance {k}" for k, v in rings.items() if k in ("1", "2", "4+"))


@functools.lru_cache(maxsize=256)
def _estimated(cell: tuple[int, int]) -> tuple[np.ndarray, str, dict[str, float]]:
    """The estimator's figure and summary for a cell: the same for every picture."""
    result = shipped_maps().map(cell)
    rings = information_rings(cell, np.nan_to_num(result.information))
    below = int((result.information < 0).sum())
    negatives = (f" {below} {'cell falls' if below == 1 else 'cells fall'} below 0 within that "
                 "error (noise: the true value is never negative), drawn as 0." if below else "")
    text = (f"**Over {result.pictures} real emoji (the paper's estimator).** Information from "
            f"cell (row {cell[0]}, col {cell[1]}): {_rings_text(rings)} nats, each "
            f"± {result.error:.3f} (the estimator's error: what it reports with the "
            f"reference token shuffled across pictures).{negatives}")
    return np.asarray(draw_estimated_map(result)), text, rings


@friendly
def measure_dependency(index, evt: gr.SelectData) -> Shown:
    codes, _ = _picture(index)
    G = codes.shape[0]
    x, y = evt.index
    cell = (min(int(y) * G // views.DISPLAY_PX, G - 1), min(int(x) * G // views.DISPLAY_PX, G - 1))
    figure, text, _ = _estimated(cell)
    loaded = MODELS.get(DEFAULT_MODEL)
    image = decode_tokens(loaded.tokenizer, codes.reshape(1, -1), G)[0]
    return Shown(enlarge(image, views.DISPLAY_PX), figure, text, None,
                 "Asking the model about this picture (2-4 s)...", "", list(cell))


def comparison(estimated: dict[str, float], believed: dict[str, float]) -> str:
    """One sentence on whether the two views order neighbours and far cells the same way."""
    data_gap = estimated["1"] - estimated["4+"]
    model_gap = believed["1"] - believed["4+"]
    if model_gap > 0.25 * data_gap:
        return (f"**They agree:** both put the neighbours ahead of far cells ({data_gap:+.3f} "
                f"nats over the real emoji, {model_gap:+.3f} in the model's belief).")
    return (f"**They disagree:** over the real emoji the neighbours carry {data_gap:+.3f} nats "
            f"more than far cells, in the model's belief about this picture {model_gap:+.3f}. "
            "The data's dependency is measured directly; the model answers a query it was "
            "seldom trained on (one known token, the next cell anywhere), so its map shows its "
            "miscalibration there, for one picture, more than the data's structure.")


@dataclass
class Believed:
    map: Any
    summary: Any
    comparison: Any


@friendly
def model_belief(index, conditional, cell) -> Believed:
    if cell is None:
        return Believed(None, "", "")
    codes, label = _picture(index)
    cell = (int(cell[0]), int(cell[1]))
    loaded = MODELS.get(DEFAULT_MODEL)
    result = dependency_map(loaded.transformer, codes, cell,
                            label if boolean(conditional, "class-conditional") else None)
    G = codes.shape[0]
    image = decode_tokens(loaded.tokenizer, codes.reshape(1, -1), G)[0]
    info = np.delete(result.information.ravel(), cell[0] * G + cell[1])
    rings = information_rings(cell, result.information)
    blue = int((info < 0).sum())
    negatives = (f" Blue cells ({blue} of {info.size}): knowing this token made the model less "
                 "sure there. For one picture's token that can happen; averaged over pictures "
                 "information is never negative." if blue else "")
    text = (f"**What this model believes about this picture.** Prior entropy "
            f"{result.prior_entropy.mean():.2f} nats per token on average, "
            f"{result.entropy.mean():.2f} given this token; information "
            f"{_rings_text(rings)} nats.{negatives}")
    return Believed(np.asarray(draw_dependency(result, image)), text,
                    comparison(_estimated(cell)[2], rings))


@functools.lru_cache(maxsize=2)
def _estimated_figure11(parallel: int) -> tuple[np.ndarray, str]:
    results = [r for r in shipped_orderings() if r.spec.parallel == parallel]
    rows = "\n".join(f"| {r.spec.label} | {r.mean_increase:+.3f} \u00b1 {r.error:.4f} |"
                     for r in results)
    table = ("**Over real emoji (the paper's estimator)**\n\n"
             "| ordering | mean entropy-bound increase (nats) |\n|---|---:|\n" + rows +
             f"\n\nOver {results[0].pictures} training emoji; \u00b1 two standard errors "
             f"across the folds. Each cell's predictor sees the earlier cells within "
             f"{results[0].context_radius} cells of it, and one per step also the earlier "
             "cells of its own step wherever they are.")
    return np.asarray(draw_estimated_increase(results)), table


@functools.lru_cache(maxsize=2)
def _model_figure11(parallel: int) -> tuple[np.ndarray, str]:
    grids = heldout()
    model = MODELS.get(DEFAULT_MODEL).transformer
    G = model.args.grid
    results = [entropy_increase(model, grids.codes[:FIGURE11_PICTURES],
                                grids.labels[:FIGURE11_PICTURES],
                                ScheduleSpec(G, order, parallel, init))
               for order, init in ORDERINGS]
    rows = "\n".join(f"| {r.spec.label} | {r.mean_increase:+.3f} | {r.parallel_loss:.3f} | "
                     f"{r.sequential_loss:.3f} |" for r in results)
    table = ("**What this model believes**\n\n"
             "| ordering | mean entropy increase (nats) | loss, parallel | loss, one per step |\n"
             "|---|---:|---:|---:|\n" + rows +
             f"\n\nAveraged over {FIGURE11_PICTURES} held-out pictures, teacher-forced.")
    return np.asarray(draw_entropy_increase(results)), table


@dataclass
class Figure11:
    estimated_figure: Any
    estimated_table: Any
    figure: Any
    table: Any


@friendly
def measure_orderings(parallel) -> Figure11:
    n = int(choice(parallel, "parallelism", FIGURE11_PARALLEL).rstrip("x"))
    return Figure11(*_estimated_figure11(n), *_model_figure11(n))


def released_note() -> str:
    released = [p for p in PRESETS.values() if p.runs is not None]
    return (f"The model's view is the embedded model's. {dependency_refusal(released[0])} The "
            "same holds for every released checkpoint; the Understand tab shows the entropy of "
            "each token of any model's last run along its own schedule.")


def build(page: SimpleNamespace) -> SimpleNamespace:
    m = SimpleNamespace()
    gr.Markdown(EXPLAIN)
    gr.Markdown("### How much one token tells about the others (Figure 9)")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            m.index = gr.Dropdown(picture_choices(), value=0, label="Held-out picture",
                                  elem_id="dep-picture")
            m.conditional = gr.Checkbox(value=True, label="Class-conditional (the model's view)",
                                        info="Off: the null class (no label)")
            m.picture = w.image("Click a cell", elem_id="dep-source")
        with gr.Column(scale=3):
            m.estimated = w.image("1. Over real emoji (the paper's estimator): prior bound, "
                                  "bound given the cell, information (nats)",
                                  elem_id="dep-estimated-map")
            m.estimated_summary = gr.Markdown(elem_id="dep-estimated-summary")
            m.map = w.image("2. What this model believes about this picture: prior entropy, "
                            "entropy given the cell, information (nats)", elem_id="dep-map")
            m.summary = gr.Markdown(elem_id="dep-summary")
            m.comparison = gr.Markdown(elem_id="dep-comparison")
    m.cell = gr.State(None)
    gr.Markdown("### Entropy increase by ordering (Figure 11)")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            m.parallel = gr.Radio(list(FIGURE11_PARALLEL), value="4x", label="Parallelism")
            run = gr.Button("Measure by ordering", elem_id="fig11-run")
            gr.Markdown("The estimator's figure is precomputed. The model's takes 15-30 s the "
                        "first time for each parallelism on 2 busy CPU cores (8 pictures, 4 "
                        "orderings, each teacher-forced twice); then both answer at once.",
                        elem_classes=["par-reason"])
            gr.Markdown(released_note(), elem_classes=["par-reason"])
        with gr.Column(scale=3):
            m.estimated_figure = w.image("1. Over real emoji (the paper's estimator): "
                                         "entropy-bound increase per cell, per ordering",
                                         elem_id="fig11-estimated-map")
            m.estimated_table = gr.Markdown(elem_id="fig11-estimated-table")
            m.figure = w.image("2. What this model believes: entropy increase per cell, per "
                               "ordering", elem_id="fig11-map")
            m.table = gr.Markdown(elem_id="fig11-table")
    model = dict(concurrency_id="model", api_visibility="private")
    w.on(gr.on, show_picture, [m.index], m, Shown, triggers=[page.demo.load, m.index.change],
         **model)
    clicked = w.on(m.picture.select, measure_dependency, [m.index], m, Shown,
                   api_visibility="private")
    w.on(clicked.success, model_belief, [m.index, m.conditional, m.cell], m, Believed, **model)
    w.on(run.click, measure_orderings, [m.parallel], m, Figure11, **model)
    return m
