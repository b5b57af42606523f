"""How often a picture's tokens change with the batch size it is sampled in.

    python -m benchmarks.batch_sizes [--model NAME] [--pictures 64] [--batches 1 8 64] [--json out.json]

Every picture draws from its own seed (par_demo/batch_sampling.py), so only the float rounding of
the batched kernels can differ between batch sizes; once one token flips, the rest of that picture
follows a different path. Compares each batch size with the first, per ordering, at the preset's
guidance and temperature: the share of pictures with any token changed and the share of tokens.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from par_demo.batch_sampling import even_labels, sample_tokens
from par_demo.checkpoints import load_model
from par_demo.orders import ScheduleSpec
from par_demo.presets import DEFAULT_MODEL, get_preset

ORDERINGS = [("raster", 1, True), ("distant", 4, True), ("distant", 16, False)]


def tokens_at(model, schedule, labels: np.ndarray, sampling, batch: int) -> np.ndarray:
    return np.concatenate([
        sample_tokens(model, schedule, labels[i:i + batch], range(i, min(i + batch, len(labels))),
                      sampling)
        for i in range(0, len(labels), batch)])


def compare(model, preset, spec: ScheduleSpec, pictures: int, batches: list[int]) -> list[dict]:
    schedule = preset.check(spec)
    labels = even_labels(pictures, preset.args.num_classes)
    base = tokens_at(model, schedule, labels, preset.sampling, batches[0])
    rows = []
    for batch in batches[1:]:
        differ = tokens_at(model, schedule, labels, preset.sampling, batch) != base
        rows.append({"ordering": spec.label, "batch": batch, "against_batch": batches[0],
                     "pictures": pictures, "pictures_changed": float(differ.any(1).mean()),
                     "tokens_changed": float(differ.mean())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--pictures", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    a = parser.parse_args()
    preset = get_preset(a.model)
    model = load_model(preset, device=a.device).transformer
    specs = ([preset.runs] if preset.runs is not None else
             [ScheduleSpec(grid=preset.args.grid, order=o, parallel=n, init_tokens=i)
              for o, n, i in ORDERINGS])
    rows = [row for spec in specs for row in compare(model, preset, spec, a.pictures, a.batches)]
    for row in rows:
        print(f"{row['ordering']:32s} batch {row['batch']:3d} vs {row['against_batch']}: "
              f"{row['pictures_changed']:.1%} of pictures, {row['tokens_changed']:.2%} of tokens")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
