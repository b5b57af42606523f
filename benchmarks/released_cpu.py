"""The released models on this CPU against the memory-bandwidth floor.

    python -m benchmarks.released_cpu [--models PAR-XL-4x,LlamaGen-XL] [--formats bf16-prepacked,bf16,fp32]
                                      [--threads N] [--repeats 5] [--json out.json]
    python -m benchmarks.released_cpu --end-to-end PAR-XL-4x [--json out.json]

Weights are random, never downloaded, built tensor by tensor in the run format with exactly the
keys and shapes of the official checkpoints (the manifests in tests/fixtures/golden/index.json).
Per model and format: ms per guided step at 1x / 4x / 16x (a step's forward at half the cache,
guidance and sampling over the whole vocabulary) next to the floor (weight bytes / the read
bandwidth measured in the same run) and to the matrix products alone, and seconds per image
from the step times of the model's own schedule. Once per run: a colour-table preview frame of
a 24x24 grid, the VQ-16 decode of the final picture, and the colour table's one-time cost.

`--end-to-end MODEL` writes those weights (fp32, under "model" as the official files) into a
temporary Hugging Face cache, measures the colour table as a first run would, and runs
`python -m par_demo generate --model MODEL` on it as a user would, reporting its model time,
wall time and peak RSS. One model at a time: PAR-XL-4x's file is 3.1 GB, and writing it holds
the fp32 weights once in memory.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from par_demo.checkpoints import check_keys, load_tokenizer, local_weight_file
from par_demo.colour_table import COLOUR_TABLES, ColourTableConfig, measure_table
from par_demo.models.fast import FastDecoder, pack_feed_forward
from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.models.packed import pack_linears, packing_available
from par_demo.models.weight_format import WeightFormat, step_matmul_seconds, weight_bytes
from par_demo.presets import LLAMAGEN_REPO, get_preset
from par_demo.preview import colour_preview
from par_demo.sampler import pick_tokens
from par_demo.sampling import SamplingConfig

INDEX = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "golden" / "index.json"
MANIFESTS = {"PAR-XL-4x": "PAR-XL-4x", "PAR-XXL-4x": "PAR-XXL-4x", "PAR-3B-4x": "PAR-3B-4x",
             "PAR-3B-16x": "PAR-3B-16x", "LlamaGen-XL": "LlamaGen-c2i-XL-384"}
FORMATS = {"bf16-prepacked": WeightFormat(torch.bfloat16, packed=True),
           "bf16": WeightFormat(torch.bfloat16), "fp32": WeightFormat(torch.float32)}
PARALLEL = (1, 4, 16)
GIB = 1 << 30


def manifest(name: str) -> dict[str, tuple[int, ...]]:
    return {k: tuple(shape) for k, (shape, _) in json.loads(INDEX.read_text())["manifests"][
        name].items()}


def random_state(shapes: dict[str, tuple[int, ...]], dtype: torch.dtype, seed: int = 0
                 ) -> dict[str, torch.Tensor]:
    """Random tensors of the manifest's shapes, each made in `dtype` (no fp32 copy of the
    whole); norms at 1, the rest normal(0, 0.02) as the reference initialisation."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("norm.weight") or key.startswith("norm."):
            state[key] = torch.ones(shape, dtype=dtype)
        else:
            state[key] = torch.empty(shape, dtype=dtype).normal_(0, 0.02, generator=gen)
    return state


def official_model(name: str, dtype: torch.dtype, packed: bool = False) -> Transformer:
    """The preset's generator with random weights of the official layout, in `dtype`
    (prepacked for oneDNN if `packed`)."""
    preset = get_preset(name)
    with torch.device("meta"):
        model = Transformer(preset.args)
    state = random_state(manifest(MANIFESTS[name]), dtype)
    check_keys(name, state, {k: v.shape for k, v in model.state_dict().items()})
    model.load_state_dict(state, assign=True)
    model = pack_feed_forward(model.eval())
    return pack_linears(model) if packed else model


def read_bandwidth(gib: float = 0.5, repeats: int = 3) -> float:
    """Bytes per second summing a buffer far larger than the caches (best of `repeats`)."""
    x = torch.ones(int(gib * GIB) // 4)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - start)
    return x.numel() * 4 / best


@torch.inference_mode()
def step_seconds(model: Transformer, repeats: int) -> dict[int, list[float]]:
    """Seconds of guided steps of 1, 4 and 16 tokens at half the cache: the forward, guidance
    and sampling over the vocabulary, as the step loop takes them. The sizes take turns within
    each repeat, so a change in the machine's load hits all of them."""
    a = model.args
    decoder = FastDecoder(model, rows=2, length=a.grid * a.grid + 1)
    dtype = model.tok_embeddings.weight.dtype
    start = a.grid * a.grid // 2
    gen = torch.Generator().manual_seed(0)
    config = SamplingConfig(cfg_scale=1.5)
    times: dict[int, list[float]] = {n: [] for n in PARALLEL}
    for repeat in range(repeats + 1):  # the first touches the weights and picks the kernels
        for n in PARALLEL:
            h = torch.randn(2, n, a.dim, generator=gen).to(dtype)
            cos, sin = torch.ones(n, 3 * a.dim), torch.zeros(n, 3 * a.dim)
            t0 = time.perf_counter()
            logits = decoder.forward(h, cos, sin, start, n)
            cond, uncond = logits.chunk(2)
            pick_tokens((uncond + (cond - uncond) * config.cfg_scale).reshape(n, -1), config,
                        gen)
            if repeat:
                times[n].append(time.perf_counter() - t0)
    return times


def image_seconds(name: str, per_parallel: dict[int, float]) -> float:
    """An image of the model's own schedule from the step times: its initial tokens are 1x
    steps, the rest its parallel ones."""
    preset = get_preset(name)
    sizes = preset.check(preset.runs).sizes
    return sum(per_parallel[1 if size == 1 else preset.runs.parallel] for size in sizes)


def bench_model(name: str, dtype_name: str, bandwidth: float, repeats: int) -> dict:
    fmt = FORMATS[dtype_name]
    dtype = fmt.dtype
    start = time.perf_counter()
    model = official_model(name, dtype, fmt.packed)
    build = time.perf_counter() - start
    floor = weight_bytes(model.args, dtype) / bandwidth
    threads = torch.get_num_threads()
    row = {"model": name, "format": dtype_name, "threads": threads,
           "weights_gb": round(weight_bytes(model.args, dtype) / 1e9, 3),
           "floor_ms": round(floor * 1000, 1), "build_s": round(build, 1), "steps": {}}
    medians = {}
    for n, times in step_seconds(model, repeats).items():
        matmul = step_matmul_seconds(model.args, 2 * n, fmt, threads)
        medians[n] = statistics.median(times)
        row["steps"][f"{n}x"] = {
            "ms": round(medians[n] * 1000, 1),
            "ms_min_max": [round(min(times) * 1000, 1), round(max(times) * 1000, 1)],
            "x_floor": round(medians[n] / floor, 2),
            "matmul_ms": round(matmul * 1000, 1),
            "beyond_matmul": round(medians[n] / matmul - 1, 2)}
    row["image_s"] = round(image_seconds(name, medians), 1)
    if get_preset(name).args.dim == get_preset("LlamaGen-XL").args.dim == 1280:
        # PAR-XL-4x and LlamaGen-XL share the XL shapes: both images from these same steps
        row["llamagen_over_par_xl_same_steps"] = round(
            image_seconds("LlamaGen-XL", medians) / image_seconds("PAR-XL-4x", medians), 2)
    return row


def decode_costs(repeats: int) -> dict:
    """The colour-table preview of a 24x24 grid, the VQ-16 decode of a final picture, and the
    colour table's one-time measurement, with random VQ-16 weights."""
    torch.manual_seed(0)
    vq = VQModel(get_preset("PAR-XL-4x").tokenizer.args).eval()
    tokens = np.random.default_rng(0).integers(0, 16384, (1, 576))
    tokens[0, 300:] = -1
    start = time.perf_counter()
    table = measure_table(vq, ColourTableConfig())
    table_s = time.perf_counter() - start
    preview = []
    for _ in range(repeats * 10):
        t0 = time.perf_counter()
        colour_preview(table, tokens, 24, 16)
        preview.append(time.perf_counter() - t0)
    with torch.inference_mode():
        t0 = time.perf_counter()
        vq.decode_codes(torch.zeros(1, 24, 24, dtype=torch.long))
        decode_s = time.perf_counter() - t0
    return {"preview_ms": round(statistics.median(preview) * 1000, 2),
            "final_decode_s": round(decode_s, 2), "colour_table_once_s": round(table_s, 1)}


def write_hub_cache(root: Path, name: str) -> None:
    """The model's and VQ-16's random weights as official .pt files in a hub cache layout."""
    preset = get_preset(name)
    commit = "0" * 40
    for source, shapes in ((preset.weights, manifest(MANIFESTS[name])),
                           (preset.tokenizer.weights, manifest("vq_ds16_c2i"))):
        repo = root / ("models--" + source.repo_id.replace("/", "--"))
        (repo / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        state = random_state(shapes, torch.float32)
        torch.save({"model": state}, repo / "snapshots" / commit / source.filename)
        del state


def end_to_end(name: str) -> dict:
    """`python -m par_demo generate --model NAME` on random official weights, as a user runs it
    a second time: the colour table, measured once per machine, is measured here first."""
    preset = get_preset(name)
    assert preset.tokenizer.weights.repo_id == LLAMAGEN_REPO
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_hub_cache(root / "hub", name)
        written = time.perf_counter() - start
        env = {**os.environ, "HF_HUB_CACHE": str(root / "hub"), "HF_HUB_OFFLINE": "1",
               "PAR_CACHE": str(root / "par_cache")}
        os.environ["PAR_CACHE"] = env["PAR_CACHE"]
        start = time.perf_counter()
        vq_path = local_weight_file(preset.tokenizer.weights, root / "hub")
        COLOUR_TABLES.table(load_tokenizer(preset.tokenizer, vq_path))
        table_s = time.perf_counter() - start
        runs = preset.runs  # the one schedule a released model runs, as its user asks for it
        command = [sys.executable, "-m", "par_demo", "generate", "--model", name, "--class", "1",
                   "--parallel", str(runs.parallel), "--order", runs.order,
                   *([] if runs.init_tokens else ["--no-init"]), "--out", str(root / "run.gif")]
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(done.stderr)
        report = json.loads(done.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {"model": name, "weights_written_s": round(written, 1),
            "colour_table_once_s": round(table_s, 1), "command_s": round(wall, 1),
            "model_s": report["seconds"], "steps": report["steps"], "dtype": report["dtype"],
            "prepacked": report["prepacked"],
            "previews": report["previews"], "peak_rss_gb": round(peak / 1e9, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MANIFESTS),
                   help="comma-separated presets (default: all five)")
    p.add_argument("--formats", default="bf16-prepacked,bf16,fp32",
                   help=f"comma-separated, of {', '.join(FORMATS)}")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-decode", action="store_true",
                   help="skip the preview, final-decode and colour-table timings (minutes)")
    p.add_argument("--end-to-end", metavar="MODEL", help="run the command line on one model")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads or os.cpu_count() or 1)
    if a.end_to_end:
        results = {"end_to_end": end_to_end(a.end_to_end)}
        print(json.dumps(results["end_to_end"]))
    else:
        models = [m.strip() for m in a.models.split(",") if m.strip()]
        for m in models:
            if m not in MANIFESTS:
                p.error(f"--models: {m!r} is not a released model; choose from "
                        f"{', '.join(MANIFESTS)}")
        formats = [f.strip() for f in a.formats.split(",") if f.strip()]
        for f in formats:
            if f not in FORMATS:
                p.error(f"--formats: {f!r} is not one of {', '.join(FORMATS)}")
        if not packing_available() and "bf16-prepacked" in formats:
            formats.remove("bf16-prepacked")
            print("bf16-prepacked skipped: oneDNN has no bf16 kernels on this CPU")
        bandwidth = read_bandwidth()
        print(f"read bandwidth {bandwidth / 1e9:.1f} GB/s, {torch.get_num_threads()} threads")
        results = {"bandwidth_gb_s": round(bandwidth / 1e9, 1), "rows": []}
        for m in models:  # one model in memory at a time
            for f in formats:
                row = bench_model(m, f, bandwidth, a.repeats)
                results["rows"].append(row)
                steps = " · ".join(f"{k} {v['ms']} ms ({v['x_floor']}x floor, matmul "
                                   f"{v['matmul_ms']})" for k, v in row["steps"].items())
                same = row.get("llamagen_over_par_xl_same_steps")
                print(f"{m} {f}: floor {row['floor_ms']} ms · {steps} · image "
                      f"{row['image_s']} s" + (f" · LlamaGen-XL / PAR-XL-4x image from these "
                                               f"steps {same}" if same else ""), flush=True)
        images = {(r["model"], r["format"]): r["image_s"] for r in results["rows"]}
        for f in formats:
            if ("LlamaGen-XL", f) in images and ("PAR-XL-4x", f) in images:
                ratio = images[("LlamaGen-XL", f)] / images[("PAR-XL-4x", f)]
                results[f"llamagen_over_par_xl_{f}"] = round(ratio, 2)
                print(f"{f}: LlamaGen-XL image / PAR-XL-4x image = {ratio:.2f}")
        if not a.no_decode:
            results["decode"] = decode_costs(a.repeats)
            print(json.dumps(results["decode"]))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
