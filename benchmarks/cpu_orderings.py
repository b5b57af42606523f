"""CPU time of one generation per ordering, as ratios to one token per step.

    python -m benchmarks.cpu_orderings [--model NAME] [--repeats 3] [--previews] [--json out.json]

Uses the named preset (default: the embedded model, its shipped weights). Token generation with guidance at the preset's
defaults, batch 1; with --previews every step is also decoded to a masked preview.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from par_demo.checkpoints import load_model
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.preview import masked_preview
from par_demo.sampler import sample_steps

ORDERINGS = [("raster", 1, True), ("distant", 1, True), ("raster", 4, True), ("distant", 4, True),
             ("distant", 4, False), ("distant", 16, True), ("distant", 16, False)]


def time_one(loaded, schedule, config, previews: bool) -> float:
    start = time.perf_counter()
    for event in sample_steps(loaded.transformer, schedule, [0], config):
        if previews:
            masked_preview(loaded.tokenizer, event.tokens, schedule.grid)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--previews", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    a = parser.parse_args()

    loaded = load_model(a.model)
    preset = get_preset(a.model)
    grid = preset.args.grid
    rows = []
    for order, parallel, init in ORDERINGS:
        spec = ScheduleSpec(grid=grid, order=order, parallel=parallel, init_tokens=init)
        if preset.unsupported_reason(spec):
            continue
        schedule = build_schedule(spec)
        time_one(loaded, schedule, preset.sampling, a.previews)  # warm-up
        seconds = statistics.median(time_one(loaded, schedule, preset.sampling, a.previews)
                                    for _ in range(a.repeats))
        rows.append({"ordering": spec.label, "steps": schedule.num_steps, "seconds": seconds,
                     "ms_per_step": 1000 * seconds / schedule.num_steps})
    base = next((r for r in rows if r["ordering"] == "raster 1x"), rows[0])
    for r in rows:
        r["step_ratio"] = base["steps"] / r["steps"]
        r["speedup"] = base["seconds"] / r["seconds"]

    print(f"{preset.name}, {grid}x{grid} tokens, guidance {preset.sampling.cfg_scale}, "
          f"{torch.get_num_threads()} threads, previews {'on' if a.previews else 'off'}")
    print(f"{'ordering':34s} {'steps':>6s} {'s/image':>8s} {'ms/step':>8s} {'steps÷':>7s} {'speedup':>8s}")
    for r in rows:
        print(f"{r['ordering']:34s} {r['steps']:6d} {r['seconds']:8.3f} {r['ms_per_step']:8.2f} "
              f"{r['step_ratio']:7.2f} {r['speedup']:8.2f}")
    if a.json:
        a.json.write_text(json.dumps({"model": preset.name, "threads": torch.get_num_threads(),
                                      "previews": a.previews, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
