"""What the dependency maps show: the paper's estimator over the shipped training emoji (every
reference cell, precomputed), then the embedded model, averaged over held-out pictures.

    python -m benchmarks.dependency_maps [--codes assets/heldout_codes.npz] [--cells 8] \\
        [--json out.json] [--figures DIR]

Figure 9: mean information (prior entropy minus entropy given the clicked cell) at each
Chebyshev distance from `--cells` clicked cells per picture (seeded), for all clicks and for
clicks in the central 8 x 8 (`--cells 0` skips it). Figure 11: per ordering, the mean entropy
increase over its own order one token per step and over raster 1x, and both teacher-forced
losses. `--codes data/heldout_all.npz` (built with `python -m par_demo.train.heldout_codes
--per-class 0 --out data/heldout_all.npz`) runs the whole held-out split.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from par_demo.checkpoints import load_model
from par_demo.dependency import (BASELINES, dependency_map, entropy_increase,
                                 information_by_distance)
from par_demo.dependency_figures import draw_dependency, draw_entropy_increase
from par_demo.heldout import HELDOUT_CODES, HeldoutGrids
from par_demo.orders import ScheduleSpec
from par_demo.presets import EMBEDDED
from par_demo.preview import decode_tokens
from par_demo.training_codes import shipped_maps

ORDERINGS = [(order, n, init) for n in (4, 16) for init in (True, False)
             for order in ("raster", "distant")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=Path, default=HELDOUT_CODES)
    parser.add_argument("--cells", type=int, default=8, help="clicked cells per picture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--figures", type=Path, default=None,
                        help="also draw Figure 11 per baseline and one Figure 9 into this folder")
    a = parser.parse_args()
    loaded = load_model(EMBEDDED, download=False)
    model = loaded.transformer
    heldout = HeldoutGrids.load(a.codes)
    G = heldout.grid
    rng = np.random.default_rng(a.seed)
    maps = [dependency_map(model, heldout.codes[i], divmod(int(c), G), int(heldout.labels[i]))
            for i in range(len(heldout)) for c in rng.choice(G * G, a.cells, replace=False)]
    central = [m for m in maps if all(G // 4 <= v < G - G // 4 for v in m.cell)]
    estimated = shipped_maps()
    every_cell = [estimated.map(divmod(c, G)) for c in range(G * G)]
    report = {"estimator": {
        "pictures": estimated.pictures,
        "information_by_distance": information_by_distance(every_cell),
        "information_by_distance_central_cells": information_by_distance(
            [m for m in every_cell if all(G // 4 <= v < G - G // 4 for v in m.cell)]),
        "largest_error": float(estimated.error.max())}}
    report["pictures"] = len(heldout)
    if maps:
        report.update(
            clicks=len(maps),
            prior_entropy=float(np.mean([m.prior_entropy for m in maps])),
            entropy_given_cell=float(np.mean([m.entropy for m in maps])),
            information_by_distance=information_by_distance(maps),
            information_by_distance_central_clicks=information_by_distance(central))
    report["orderings"] = []
    by_baseline = {b: [] for b in BASELINES}
    for order, n, init in ORDERINGS:
        spec = ScheduleSpec(grid=G, order=order, parallel=n, init_tokens=init)
        for baseline in BASELINES:
            result = entropy_increase(model, heldout.codes, heldout.labels, spec, baseline)
            by_baseline[baseline].append(result)
            report["orderings"].append({
                "ordering": spec.label, "baseline": baseline,
                "mean_increase": result.mean_increase,
                "parallel_entropy": float(result.parallel_entropy.mean()),
                "sequential_entropy": float(result.sequential_entropy.mean()),
                "parallel_loss": result.parallel_loss, "sequential_loss": result.sequential_loss})
    if a.figures:
        a.figures.mkdir(parents=True, exist_ok=True)
        for baseline, results in by_baseline.items():
            name = "entropy_increase_" + baseline.replace(" ", "_") + ".png"
            draw_entropy_increase(results).save(a.figures / name)
        picture = decode_tokens(loaded.tokenizer, heldout.codes[:1].reshape(1, -1), G)[0]
        example = dependency_map(model, heldout.codes[0], (G // 2, G // 2), int(heldout.labels[0]))
        draw_dependency(example, picture).save(a.figures / "dependency_map.png")
    print(json.dumps(report, indent=1))
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
