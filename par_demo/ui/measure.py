"""The Measure tab: the paper's Figures 9 and 11 computed live by the embedded any-order model
on real held-out emoji (assets/heldout_codes.npz): how much one token tells about every other
cell, and how much generating tokens together raises their entropy, per ordering."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import gradio as gr
import numpy as np

from par_demo.dependency import dependency_map, dependency_refusal, entropy_increase
from par_demo.dependency_figures import draw_dependency, draw_entropy_increase
from par_demo.heldout import HeldoutGrids
from par_demo.orders import ScheduleSpec
from par_demo.presets import DEFAULT_MODEL, PRESETS, get_preset
from par_demo.preview import decode_tokens, enlarge
from par_demo.ui import views, widgets as w
from par_demo.ui.errors import friendly
from par_demo.ui.inputs import boolean, choice, number
from par_demo.ui.machine import MODELS

TITLE, TAB_ID = "Measure", "measure"
FIGURE11_PICTURES = 8  # held-out pictures averaged: a few seconds per ordering on 2 cores
FIGURE11_PARALLEL = ("4x", "16x")

EXPLAIN = """
**What these maps show.** PAR rests on one measurement: neighbouring tokens depend strongly on
each other, distant ones weakly (the paper's Figure 9), so generating distant tokens together
costs less than generating neighbours together (its Figure 11). Our model can ask any cell's
distribution given any known cells, so it measures both on real emoji it never trained on.
**Click a cell of the picture**: the left map is each cell's entropy with nothing known, the
middle one its entropy once the clicked cell's token is known, the right one their difference,
the information that one token carries about each cell (in nats; red means it helps).
**Measure by ordering** draws, per cell, how much more uncertain the model is when the cell is
generated together with the others of its step than when the same order runs one token per
step, averaged over held-out pictures, with each ordering's mean and teacher-forced loss.
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
    map: Any
    summary: Any


@friendly
def show_picture(index) -> Shown:
    codes, _ = _picture(index)
    loaded = MODELS.get(DEFAULT_MODEL)
    image = decode_tokens(loaded.tokenizer, codes.reshape(1, -1), codes.shape[0])[0]
    return Shown(enlarge(image, views.DISPLAY_PX), None,
                 "Click a cell of the picture to see what its token tells about the others.")


@friendly
def measure_dependency(index, conditional, evt: gr.SelectData) -> Shown:
    codes, label = _picture(index)
    G = codes.shape[0]
    x, y = evt.index
    cell = (min(int(y) * G // views.DISPLAY_PX, G - 1), min(int(x) * G // views.DISPLAY_PX, G - 1))
    loaded = MODELS.get(DEFAULT_MODEL)
    result = dependency_map(loaded.transformer, codes, cell,
                            label if boolean(conditional, "class-conditional") else None)
    image = decode_tokens(loaded.tokenizer, codes.reshape(1, -1), G)[0]
    info = result.information
    near = np.abs(np.indices((G, G)) - np.array(cell)[:, None, None]).max(0)
    text = (f"Cell (row {cell[0]}, col {cell[1]}): prior entropy {result.prior_entropy.mean():.2f} "
            f"nats per cell on average, {result.entropy.mean():.2f} given this token. "
            f"Information: {info[near == 1].mean():.3f} nats at its 8 neighbours, "
            f"{info[near >= 4].mean():.3f} at 4 or more cells away.")
    return Shown(enlarge(image, views.DISPLAY_PX), np.asarray(draw_dependency(result, image)),
                 text)


@functools.lru_cache(maxsize=4)
def _figure11(parallel: int) -> tuple[np.ndarray, str]:
    grids = heldout()
    model = MODELS.get(DEFAULT_MODEL).transformer
    G = model.args.grid
    results = [entropy_increase(model, grids.codes[:FIGURE11_PICTURES],
                                grids.labels[:FIGURE11_PICTURES],
                                ScheduleSpec(G, order, parallel, init))
               for order in ("distant", "raster") for init in (True, False)]
    rows = "\n".join(f"| {r.spec.label} | {r.mean_increase:+.3f} | {r.parallel_loss:.3f} | "
                     f"{r.sequential_loss:.3f} |" for r in results)
    table = ("| ordering | mean entropy increase (nats) | loss, parallel | loss, one per step |\n"
             "|---|---:|---:|---:|\n" + rows +
             f"\n\nAveraged over {FIGURE11_PICTURES} held-out pictures, teacher-forced.")
    return np.asarray(draw_entropy_increase(results)), table


@dataclass
class Figure11:
    figure: Any
    table: Any


@friendly
def measure_orderings(parallel) -> Figure11:
    n = int(choice(parallel, "parallelism", FIGURE11_PARALLEL).rstrip("x"))
    return Figure11(*_figure11(n))


def released_note() -> str:
    released = [p for p in PRESETS.values() if p.runs is not None]
    return (f"Computed by the embedded model. {dependency_refusal(released[0])} The same holds "
            "for every released checkpoint; the Understand tab shows the entropy of each token "
            "of any model's last run along its own schedule.")


def build(page: SimpleNamespace) -> SimpleNamespace:
    m = SimpleNamespace()
    gr.Markdown(EXPLAIN)
    gr.Markdown("### How much one token tells about the others (Figure 9)")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            m.index = gr.Dropdown(picture_choices(), value=0, label="Held-out picture",
                                  elem_id="dep-picture")
            m.conditional = gr.Checkbox(value=True, label="Class-conditional",
                                        info="Off: the null class (no label)")
            m.picture = w.image("Click a cell", elem_id="dep-source")
        with gr.Column(scale=3):
            m.map = w.image("Prior entropy, entropy given the cell, information (nats)",
                            elem_id="dep-map")
            m.summary = gr.Markdown(elem_id="dep-summary")
    gr.Markdown("### Entropy increase by ordering (Figure 11)")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            m.parallel = gr.Radio(list(FIGURE11_PARALLEL), value="4x", label="Parallelism")
            run = gr.Button("Measure by ordering", elem_id="fig11-run")
            gr.Markdown("Takes a few seconds the first time for each parallelism.",
                        elem_classes=["par-reason"])
            gr.Markdown(released_note(), elem_classes=["par-reason"])
        with gr.Column(scale=3):
            m.figure = w.image("Entropy increase per cell, per ordering", elem_id="fig11-map")
            m.table = gr.Markdown(elem_id="fig11-table")
    model = dict(concurrency_id="model", api_visibility="private")
    w.on(gr.on, show_picture, [m.index], m, Shown, triggers=[page.demo.load, m.index.change],
         **model)
    w.on(m.picture.select, measure_dependency, [m.index, m.conditional], m, Shown, **model)
    w.on(run.click, measure_orderings, [m.parallel], m, Figure11, **model)
    return m
