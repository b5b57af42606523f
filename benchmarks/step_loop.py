"""The step loop, plain forward against the fast path, measured in the same run (ratios).

    python -m benchmarks.step_loop [--threads 1] [--repeats 7] [--json out.json]   # CPU
    python -m benchmarks.step_loop --gpu [--batches 1 32] [--json out.json]         # CUDA

CPU: the embedded model (its shipped weights), guidance at its default, batch 1 (2 rows with guidance). Per ordering, path and
preview mode: seconds per image and the median ms per step. Previews are "none", "every step"
(a decode after each step) or "live" (decoded at the display rate, preview.FrameClock).
Repeats alternate the two paths, so machine noise hits both; the spread is reported.

GPU: the released architectures with random bf16 weights, plain vs fast (CUDA graphs) at each
batch, with the measured copy bandwidth, the weight-streaming floor (weight bytes x steps /
bandwidth) and the ratio to it; the VQ-16 decode separately.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from benchmarks.random_weights import random_transformer
from par_demo.checkpoints import load_model
from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.preview import FrameClock, step_frame
from par_demo.sampler import sample_steps

CPU_ORDERINGS = [ScheduleSpec(0, "raster", 1), ScheduleSpec(0, "distant", 4, True),
                 ScheduleSpec(0, "distant", 16, True)]
PREVIEWS = ("none", "every step", "live")
RELEASED = ["LlamaGen-XL", "PAR-XL-4x", "PAR-XXL-4x", "PAR-3B-4x", "PAR-3B-16x"]
GPU_TARGETS = {  # seconds per image at batch 1, from issue 12 (and >= 100 images/s for
    "PAR-XL-4x": 0.12, "PAR-3B-16x": 0.16, "LlamaGen-XL": 0.45}  # PAR-XL-4x at batch 32)


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def one_image(model, tokenizer, schedule, classes, config, fast: bool, previews: str,
              size: int = 256) -> dict:
    """Seconds for one image, median ms per step, and how many previews were decoded."""
    clock = FrameClock()
    decoded = 0
    steps = []
    start = time.perf_counter()
    for event in sample_steps(model, schedule, classes, config, fast=fast):
        steps.append(event.step_seconds)
        if previews == "every step" or (previews == "live" and clock.due(event.step, event.done)):
            step_frame(tokenizer, schedule, event.tokens[0], event.step, size)
            decoded += 1
    sync(next(model.parameters()).device)
    return {"seconds": time.perf_counter() - start,
            "ms_per_step": 1000 * statistics.median(steps), "previews": decoded}


def compare_paths(run, repeats: int) -> dict:
    """Plain and fast alternately, `repeats` times each after a warm-up of each."""
    run(False), run(True)
    got = {False: [], True: []}
    for _ in range(repeats):
        for fast in (False, True):
            got[fast].append(run(fast))
    row = {}
    for fast, name in ((False, "plain"), (True, "fast")):
        seconds = [r["seconds"] for r in got[fast]]
        row[name] = {
            "seconds": statistics.median(seconds), "seconds_min": min(seconds),
            "spread": (max(seconds) - min(seconds)) / statistics.median(seconds),
            "ms_per_step": statistics.median(r["ms_per_step"] for r in got[fast]),
            "previews": got[fast][-1]["previews"]}
    row["ratio_image"] = row["plain"]["seconds"] / row["fast"]["seconds"]
    row["ratio_step"] = row["plain"]["ms_per_step"] / row["fast"]["ms_per_step"]
    return row


def cpu_rows(repeats: int) -> list[dict]:
    loaded = load_model(DEFAULT_MODEL)
    preset = get_preset(DEFAULT_MODEL)
    rows = []
    for spec in CPU_ORDERINGS:
        schedule = build_schedule(ScheduleSpec(preset.args.grid, spec.order, spec.parallel,
                                               spec.init_tokens))
        for previews in PREVIEWS:
            row = compare_paths(
                lambda fast: one_image(loaded.transformer, loaded.tokenizer, schedule, [0],
                                       preset.sampling, fast, previews), repeats)
            rows.append({"ordering": schedule.spec.label, "steps": schedule.num_steps,
                         "previews": previews, **row})
    decode = []
    tokens = torch.randint(0, preset.args.vocab_size, (1, preset.args.grid ** 2)).numpy()
    for _ in range(3 * repeats):
        start = time.perf_counter()
        step_frame(loaded.tokenizer, schedule, tokens[0], 0, 256)
        decode.append(time.perf_counter() - start)
    rows.append({"vq_decode_ms": 1000 * statistics.median(decode)})
    rows.append({"matmul_ms": matmul_floor_ms(loaded.transformer, rows=2 * 4, repeats=repeats)})
    return rows


def matmul_floor_ms(model: Transformer, rows: int, repeats: int) -> float:
    """Median ms of one step's matrix products alone (every linear layer once, `rows` rows):
    the part of a step that no reduction of per-op overhead removes."""
    weights = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    inputs = [torch.randn(rows, w.shape[1], dtype=w.dtype) for w in weights]
    times = []
    for _ in range(20 * repeats):
        start = time.perf_counter()
        for x, w in zip(inputs, weights):
            torch.nn.functional.linear(x, w)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def print_cpu(rows: list[dict]) -> None:
    print(f"{'ordering':34s} {'steps':>5s} {'previews':>10s} | {'plain s':>8s} {'ms/step':>7s} "
          f"| {'fast s':>7s} {'ms/step':>7s} {'decodes':>7s} | {'image x':>7s} {'step x':>6s} "
          f"{'spread':>6s}")
    for r in rows:
        if "vq_decode_ms" in r:
            print(f"one preview decode (VQ + enlarge): {r['vq_decode_ms']:.2f} ms")
            continue
        if "matmul_ms" in r:
            print(f"the matrix products of one 4-slot guided step alone: {r['matmul_ms']:.2f} ms")
            continue
        p, f = r["plain"], r["fast"]
        print(f"{r['ordering']:34s} {r['steps']:5d} {r['previews']:>10s} | {p['seconds']:8.3f} "
              f"{p['ms_per_step']:7.2f} | {f['seconds']:7.3f} {f['ms_per_step']:7.2f} "
              f"{f['previews']:7d} | {r['ratio_image']:7.2f} {r['ratio_step']:6.2f} "
              f"{max(p['spread'], f['spread']):6.2f}")


# ---------------------------------------------------------------- GPU: released architectures

def copy_bandwidth(device, megabytes: int = 1024) -> float:
    """Bytes per second of a device-to-device copy (read + write counted)."""
    src = torch.empty(megabytes * 2**20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(device)
    start = time.perf_counter()
    for _ in range(10):
        dst.copy_(src)
    sync(device)
    return 2 * src.numel() * 10 / (time.perf_counter() - start)


def released_rows(presets, batches, repeats: int, device="cuda",
                  dtype=torch.bfloat16) -> list[dict]:
    bandwidth = copy_bandwidth(device)
    rows = []
    for preset in presets:
        model = random_transformer(preset, device, dtype)
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        schedule = build_schedule(preset.runs)
        floor = weight_bytes * schedule.num_steps / bandwidth
        for batch in batches:
            classes = [c % preset.args.num_classes for c in range(batch)]
            row = compare_paths(lambda fast: one_image(model, None, schedule, classes,
                                                       preset.sampling, fast, "none"), repeats)
            fast_s = row["fast"]["seconds"]
            rows.append({"model": preset.name, "batch": batch, "steps": schedule.num_steps,
                         "weight_gb": weight_bytes / 1e9, "bandwidth_gbs": bandwidth / 1e9,
                         "floor_seconds": floor, "fast_over_floor": fast_s / floor,
                         "images_per_second": batch / fast_s,
                         "target_seconds": GPU_TARGETS.get(preset.name) if batch == 1 else None,
                         **row})
        del model
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()
    return rows


def vq_rows(vq_args, batches, repeats: int, device="cuda") -> list[dict]:
    vq = VQModel(vq_args).to(device).eval()
    rows = []
    for batch in batches:
        codes = torch.randint(0, vq.args.codebook_size, (batch, 24, 24), device=device)
        with torch.inference_mode():
            vq.decode_codes(codes)
            sync(device)
            start = time.perf_counter()
            for _ in range(repeats):
                vq.decode_codes(codes)
            sync(device)
        rows.append({"vq_decode_batch": batch,
                     "vq_decode_ms": 1000 * (time.perf_counter() - start) / repeats})
    return rows


def print_gpu(rows: list[dict]) -> None:
    print(f"{'model':12s} {'batch':>5s} {'steps':>5s} | {'plain s':>8s} {'fast s':>7s} "
          f"{'x':>5s} | {'ms/step':>7s} {'img/s':>7s} | {'floor s':>7s} {'/floor':>6s} "
          f"{'target':>6s}")
    for r in rows:
        if "vq_decode_ms" in r:
            print(f"VQ-16 decode, batch {r['vq_decode_batch']}: {r['vq_decode_ms']:.2f} ms")
            continue
        target = f"{r['target_seconds']:.2f}" if r["target_seconds"] else "-"
        print(f"{r['model']:12s} {r['batch']:5d} {r['steps']:5d} | {r['plain']['seconds']:8.3f} "
              f"{r['fast']['seconds']:7.3f} {r['ratio_image']:5.1f} | "
              f"{r['fast']['ms_per_step']:7.2f} {r['images_per_second']:7.1f} | "
              f"{r['floor_seconds']:7.3f} {r['fast_over_floor']:6.1f} {target:>6s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="the released architectures on CUDA")
    parser.add_argument("--models", nargs="+", default=RELEASED)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (the app gives each of its 2 concurrent runs 1)")
    parser.add_argument("--repeats", type=int, default=None, help="per path (default 7; GPU 3)")
    parser.add_argument("--json", type=Path, default=None)
    a = parser.parse_args()

    torch.set_num_threads(a.threads)
    repeats = a.repeats or (3 if a.gpu else 7)
    if a.gpu:
        if not torch.cuda.is_available():
            parser.error("--gpu needs CUDA")
        device = torch.cuda.get_device_name()
        presets = [get_preset(name) for name in a.models]
        rows = (released_rows(presets, a.batches, repeats)
                + vq_rows(presets[0].tokenizer.args, a.batches, repeats))
        print(f"{device}, bf16, random weights, guidance at each model's default")
        print_gpu(rows)
    else:
        device = f"cpu, {a.threads} thread(s) on {os.cpu_count()} cores"
        rows = cpu_rows(repeats)
        print(f"{get_preset(DEFAULT_MODEL).name} on {device}; guidance, batch 1")
        print_cpu(rows)
    if a.json:
        a.json.write_text(json.dumps({"device": device, "torch": torch.__version__,
                                      "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
