"""What the dependency maps show on the embedded model, averaged over held-out pictures.

    python -m benchmarks.dependency_maps [--codes assets/heldout_codes.npz] [--cells 8] \\
        [--json out.json]

Figure 9: mean information (prior entropy minus entropy given the clicked cell) at each
Chebyshev distance from `--cells` clicked cells per picture (seeded), for all clicks and for
clicks in the central 8 x 8. Figure 11: per ordering, the mean entropy increase over one token
per step and both teacher-forced losses. `--codes data/heldout_all.npz` (built with
`python -m par_demo.train.heldout_codes --per-class 0 --out data/heldout_all.npz`) runs the
whole held-out split.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from par_demo.checkpoints import load_model
from par_demo.dependency import dependency_map, entropy_increase, information_by_distance
from par_demo.heldout import HELDOUT_CODES, HeldoutGrids
from par_demo.orders import ScheduleSpec
from par_demo.presets import EMBEDDED

ORDERINGS = [(order, n, init) for n in (4, 16) for init in (True, False)
             for order in ("raster", "distant")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--codes", type=Path, default=HELDOUT_CODES)
    parser.add_argument("--cells", type=int, default=8, help="clicked cells per picture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    a = parser.parse_args()
    model = load_model(EMBEDDED, download=False).transformer
    heldout = HeldoutGrids.load(a.codes)
    G = heldout.grid
    rng = np.random.default_rng(a.seed)
    maps = [dependency_map(model, heldout.codes[i], divmod(int(c), G), int(heldout.labels[i]))
            for i in range(len(heldout)) for c in rng.choice(G * G, a.cells, replace=False)]
    central = [m for m in maps if all(G // 4 <= v < G - G // 4 for v in m.cell)]
    report = {
        "pictures": len(heldout), "clicks": len(maps),
        "prior_entropy": float(np.mean([m.prior_entropy for m in maps])),
        "entropy_given_cell": float(np.mean([m.entropy for m in maps])),
        "information_by_distance": information_by_distance(maps),
        "information_by_distance_central_clicks": information_by_distance(central),
        "orderings": [],
    }
    for order, n, init in ORDERINGS:
        result = entropy_increase(model, heldout.codes, heldout.labels,
                                  ScheduleSpec(grid=G, order=order, parallel=n, init_tokens=init))
        report["orderings"].append({
            "ordering": result.spec.label, "mean_increase": result.mean_increase,
            "parallel_entropy": float(result.parallel_entropy.mean()),
            "sequential_entropy": float(result.sequential_entropy.mean()),
            "parallel_loss": result.parallel_loss, "sequential_loss": result.sequential_loss})
    print(json.dumps(report, indent=1))
    if a.json:
        a.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
