"""The embedded generations from their files, against the first (gen1) in the same run (ratios).

    python -m benchmarks.generation_speed [--threads 2] [--repeats 7] [--json out.json]

Per generation whose files are in assets/ (presets.EMBEDDED_GENERATIONS): the median ms of a
guided distant-4x step on the fast path at the sampling defaults, and the median ms of a 64 px
masked preview decode (what the app draws per shown frame). Repeats alternate the generations,
so machine noise hits all of them; the spread (max - min over median) is reported.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from benchmarks.generator_sizes import summarise
from par_demo.checkpoints import CheckpointError, load_model
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.presets import EMBEDDED_GENERATIONS
from par_demo.preview import masked_preview
from par_demo.sampler import sample_steps


def step_ms(loaded, schedule) -> float:
    steps = [e.step_seconds for e in sample_steps(loaded.transformer, schedule, [0],
                                                  loaded.preset.sampling, fast=True)]
    return 1000 * statistics.median(steps)


def decode_ms(loaded, schedule, tokens_L: np.ndarray, repeats: int = 10) -> float:
    half = tokens_L.copy()
    half[np.concatenate(schedule.steps[schedule.num_steps // 2:])] = -1  # pending, as mid-run
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        masked_preview(loaded.tokenizer, half[None], schedule.grid)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def measure(repeats: int) -> list[dict]:
    loaded = []
    for preset in EMBEDDED_GENERATIONS:
        try:
            loaded.append(load_model(preset, download=False))
        except CheckpointError as err:
            print(f"skipped {preset.name}: {err}")
    schedule = build_schedule(ScheduleSpec(16, "distant", 4, True))
    tokens = {m.preset.name: np.random.default_rng(0).integers(
        0, m.preset.args.vocab_size, 256) for m in loaded}
    got = {m.preset.name: {"step": [], "decode": []} for m in loaded}
    with torch.inference_mode():
        for m in loaded:  # warm-up
            step_ms(m, schedule), decode_ms(m, schedule, tokens[m.preset.name])
        for _ in range(repeats):
            for m in loaded:
                got[m.preset.name]["step"].append(step_ms(m, schedule))
                got[m.preset.name]["decode"].append(decode_ms(m, schedule, tokens[m.preset.name]))
    return summarise("generation", got)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="the app's threads")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = measure(a.repeats)
    print(f"| generation | guided distant-4x step ({a.threads} threads) | vs gen1 "
          "| 64 px preview decode | vs gen1 |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['generation']} | {r['step']:.2f} ms (spread {r['step_spread']:.0%}) | "
              f"{r['step_ratio']:.2f} | {r['decode']:.2f} ms (spread {r['decode_spread']:.0%}) "
              f"| {r['decode_ratio']:.2f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
