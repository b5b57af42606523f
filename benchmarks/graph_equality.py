"""Plain module forward against the CUDA-graphed fast path: the same greedy tokens?

    python -m benchmarks.graph_equality [--batches 1 32] [--dtype bfloat16] [--json out.json]

Every released architecture with seeded random weights (its own schedule, its guidance), greedy
sampling, batch 1 and 32. Reports per model and batch whether the tokens are identical and,
where not, the share of tokens that differ (kernels of another shape may round differently).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.random_weights import random_transformer
from par_demo.orders import build_schedule
from par_demo.presets import PRESETS
from par_demo.sampler import sample_steps


def last_tokens(model, schedule, classes, config, fast: bool) -> np.ndarray:
    event = None
    for event in sample_steps(model, schedule, classes, config, fast=fast, graphs=fast):
        pass
    return event.tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA device")
    rows = []
    for preset in (p for p in PRESETS.values() if p.runs is not None):
        torch.manual_seed(0)
        model = random_transformer(preset, "cuda", getattr(torch, a.dtype))
        schedule = build_schedule(preset.runs)
        config = replace(preset.sampling, greedy=True)
        for batch in a.batches:
            classes = [c % preset.args.num_classes for c in range(batch)]
            plain = last_tokens(model, schedule, classes, config, fast=False)
            graphed = last_tokens(model, schedule, classes, config, fast=True)
            rows.append({"model": preset.name, "batch": batch, "steps": schedule.num_steps,
                         "identical": bool(np.array_equal(plain, graphed)),
                         "differing_share": float((plain != graphed).mean())})
            print(json.dumps(rows[-1]), flush=True)
        del model
        torch.cuda.empty_cache()
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
