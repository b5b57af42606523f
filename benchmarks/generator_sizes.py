"""Candidate generator sizes against a shipped generation, measured in the same run (ratios).

    python -m benchmarks.generator_sizes [--family gen1|gen3] [--threads 2] [--repeats 5] \
        [--json out.json]

The gen1 family sized the second generation (issue 19); the gen3 family asks what a larger
per-emoji model (issue 32) would cost against today's, whose guided step may grow 1.5x at most.

Per candidate (random weights: a step takes the same time whatever they are): the median ms of a
guided distant-4x step on the fast path at the app's threads, the same at one thread, and the
median seconds of one training step (batch 32, the training mixture) at one thread. Repeats
cycle through the candidates, so machine noise hits all of them; the spread is reported.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, replace

import torch

from par_demo.models.transformer import ModelArgs, Transformer
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.presets import EMBEDDED_GEN1, EMBEDDED_GEN3
from par_demo.sampler import sample_steps
from par_demo.train.config import GeneratorTraining
from par_demo.train.generator import teacher_forced_loss
from par_demo.train.teacher_forcing import draw_rows, mixture_bank


@dataclass(frozen=True)
class Candidate:
    name: str
    args: ModelArgs


GEN1, GEN3 = EMBEDDED_GEN1.args, EMBEDDED_GEN3.args
FAMILIES = {  # the first candidate of each is the baseline of its ratios
    "gen1": (
        Candidate("gen1: 256 x 3, 512 codes", GEN1),
        Candidate("256 x 3, 1024 codes", replace(GEN1, vocab_size=1024)),
        Candidate("256 x 4, 1024 codes", replace(GEN1, vocab_size=1024, n_layer=4)),
        Candidate("288 x 3, 1024 codes", replace(GEN1, vocab_size=1024, dim=288)),
        Candidate("320 x 3, 1024 codes", replace(GEN1, vocab_size=1024, dim=320)),
        Candidate("320 x 4, 1024 codes", replace(GEN1, vocab_size=1024, dim=320, n_layer=4)),
        Candidate("256 x 5, 1024 codes", replace(GEN1, vocab_size=1024, n_layer=5)),
    ),
    "gen3": tuple(
        Candidate(f"{label}, {GEN3.num_classes} classes", replace(GEN3, dim=dim, n_layer=n_layer))
        for label, dim, n_layer in (("gen3: 288 x 3", 288, 3), ("288 x 4", 288, 4),
                                    ("288 x 6", 288, 6), ("384 x 3", 384, 3), ("384 x 4", 384, 4),
                                    ("448 x 4", 448, 4), ("512 x 4", 512, 4))
    ),
}


def guided_step_ms(model: Transformer, threads: int) -> float:
    torch.set_num_threads(threads)
    schedule = build_schedule(ScheduleSpec(model.args.grid, "distant", 4, True))
    steps = [e.step_seconds for e in sample_steps(model, schedule, [0], EMBEDDED_GEN1.sampling,
                                                  fast=True)]
    return 1000 * statistics.median(steps)


def training_step_seconds(model: Transformer, config: GeneratorTraining, bank) -> float:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    grids = torch.randint(0, model.args.vocab_size, (config.batch_size, model.args.grid ** 2),
                          generator=g)
    cond = torch.randint(0, model.args.num_classes, (config.batch_size,), generator=g)
    rows = draw_rows(bank, config.batch_size, config.mixture.random_share, g)
    model.train()
    start = time.perf_counter()
    teacher_forced_loss(model, grids, cond, rows, bank, torch.device("cpu")).backward()
    seconds = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    model.eval()
    return seconds


def summarise(label: str, got: dict[str, dict[str, list[float]]]) -> list[dict]:
    """Per name (the first is the baseline): each figure's median, spread (max - min over the
    median) and ratio to the baseline's median."""
    rows = []
    for name, figures in got.items():
        row = {label: name}
        for key, values in figures.items():
            row[key] = statistics.median(values)
            row[f"{key}_spread"] = (max(values) - min(values)) / row[key]
        rows.append(row)
    for row in rows:
        for key in got[rows[0][label]]:
            row[f"{key}_ratio"] = row[key] / rows[0][key]
    return rows


def measure(candidates: tuple[Candidate, ...], threads: int, repeats: int) -> list[dict]:
    config = GeneratorTraining(batch_size=32)
    bank = mixture_bank(config.mixture)
    models = [Transformer(c.args).init_weights(torch.Generator().manual_seed(0)).eval()
              for c in candidates]
    for m in models:  # warm-up: first calls allocate
        guided_step_ms(m, threads), training_step_seconds(m, config, bank)
    got = [{"step": [], "step_1": [], "train": []} for _ in models]
    for _ in range(repeats):
        for m, g in zip(models, got):
            with torch.no_grad():
                g["step"].append(guided_step_ms(m, threads))
                g["step_1"].append(guided_step_ms(m, 1))
            g["train"].append(training_step_seconds(m, config, bank))
    rows = summarise("candidate", {c.name: g for c, g in zip(candidates, got)})
    for row, m in zip(rows, models):
        row["parameters_M"] = sum(p.numel() for p in m.parameters()) / 1e6
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=FAMILIES, default="gen1",
                   help="the candidates, against the first of them")
    p.add_argument("--threads", type=int, default=2, help="the app's threads for the step")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json")
    a = p.parse_args()
    rows = measure(FAMILIES[a.family], a.threads, a.repeats)
    print(f"| candidate | parameters | guided step ({a.threads} threads) | vs {a.family} | "
          f"1 thread | vs {a.family} | training step (batch 32, 1 thread) | vs {a.family} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['candidate']} | {r['parameters_M']:.2f} M | {r['step']:.2f} ms "
              f"(±{r['step_spread'] / 2:.0%}) | {r['step_ratio']:.2f} | {r['step_1']:.2f} ms | "
              f"{r['step_1_ratio']:.2f} | {r['train']:.2f} s (±{r['train_spread'] / 2:.0%}) | "
              f"{r['train_ratio']:.2f} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
