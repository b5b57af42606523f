"""Command line: draw schedules, generate step-by-step animations, list and fetch models.

    python -m par_demo schedule --grid 24 --parallel 4 --order distant --out fig3.png
    python -m par_demo generate --class 3 --parallel 4 --order distant --seed 0 --out run.gif
    python -m par_demo edit --image in.png --region right --class 3 --seed 0 --out edit.gif
    python -m par_demo sample --num-images 50000 --batch 64 --out samples.npz  # or under torchrun
    python -m par_demo models
    python -m par_demo fetch PAR-XL-4x
    python -m par_demo dependency --image face.png --cell 8,8 --class 0 --out map.png
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from par_demo.masks import REGIONS
from par_demo.batch_cli import add_arguments as add_sample_arguments
from par_demo.orders import ORDERS, ScheduleError, ScheduleSpec, build_schedule


def _schedule_args(p: argparse.ArgumentParser, grid_default: int | None) -> None:
    p.add_argument("--grid", type=int, default=grid_default, help="tokens per side")
    p.add_argument("--parallel", type=int, default=4, help="tokens per step: 1, 4 or 16")
    p.add_argument("--order", choices=ORDERS, default="distant")
    p.add_argument("--no-init", dest="init_tokens", action="store_false",
                   help="skip the sequential initial tokens")
    p.add_argument("--regions", type=int, default=None, help="distant: regions per side")
    p.add_argument("--order-seed", type=int, default=0, help="random order: its seed")


def _spec(a: argparse.Namespace, grid: int) -> ScheduleSpec:
    return ScheduleSpec(grid=grid, order=a.order, parallel=a.parallel, init_tokens=a.init_tokens,
                        regions=a.regions, seed=a.order_seed)


def cmd_schedule(a: argparse.Namespace) -> int:
    from par_demo.figure3 import draw_schedule

    schedule = build_schedule(_spec(a, a.grid))
    draw_schedule(schedule, size=a.size).save(a.out)
    print(f"{schedule.spec.label} on {a.grid}x{a.grid}: {schedule.num_steps} steps -> {a.out}")
    return 0


def cmd_generate(a: argparse.Namespace) -> int:
    import torch

    from par_demo.animation import caption, write_animation
    from par_demo.checkpoints import load_model
    from par_demo.colour_table import COLOUR_TABLES
    from par_demo.cpu_cost import run_dtype
    from par_demo.presets import get_preset
    from par_demo.preview import step_frame
    from par_demo.sampler import sample_steps

    preset = get_preset(a.model)
    schedule = preset.check(_spec(a, a.grid or preset.args.grid))
    class_id = preset.class_names().resolve(a.class_)
    config = replace(preset.sampling, seed=a.seed, greedy=a.greedy,
                     **{k: v for k, v in (("cfg_scale", a.cfg), ("temperature", a.temperature),
                                          ("top_k", a.top_k), ("top_p", a.top_p)) if v is not None})
    dtype = run_dtype(preset, a.device) if a.dtype == "auto" else getattr(torch, a.dtype)
    loaded = load_model(preset, device=a.device, dtype=dtype)
    colour_frames = a.previews == "colours" or (
        a.previews == "auto" and preset.large and torch.device(a.device).type == "cpu")
    colours = COLOUR_TABLES.table(loaded.tokenizer) if colour_frames else None
    frames, step_seconds = [], []
    event = None
    for event in sample_steps(loaded.transformer, schedule, [class_id], config):
        step_seconds.append(event.step_seconds)
        frame = step_frame(loaded.tokenizer, schedule, event.tokens[0], event.step, a.size,
                           overlay=a.overlay, colours=colours)
        frames.append(caption(frame, f"step {event.step + 1}/{event.num_steps}"))
    write_animation(frames, a.out, a.frame_ms)
    print(json.dumps({
        "model": preset.name, "class": class_id,
        "class_name": preset.class_names().names[class_id], "schedule": schedule.spec.label,
        "steps": schedule.num_steps, "tokens_per_step_max": max(schedule.sizes),
        "seconds": round(sum(step_seconds), 4),
        "seconds_per_step": round(float(np.mean(step_seconds)), 6),
        "dtype": str(dtype).removeprefix("torch."),
        "previews": "colour table" if colours is not None else "decoder",
        "out": a.out,
    }))
    return 0


def cmd_edit(a: argparse.Namespace) -> int:
    from PIL import Image

    from par_demo.animation import caption, write_animation
    from par_demo.checkpoints import load_model
    from par_demo.editing import encode_picture, load_editing_tokenizer, plan_edit, run_plan
    from par_demo.masks import read_mask, region_mask
    from par_demo.pictures import read_picture
    from par_demo.presets import get_preset
    from par_demo.preview import step_frame

    preset = get_preset(a.model)
    grid = preset.args.grid
    picture = read_picture(Path(a.image), preset.image_size, field="--image")
    mask = (region_mask(a.region, grid) if a.region
            else read_mask(Path(a.mask), picture.source_size, grid, field="--mask"))
    class_id = preset.class_names().resolve(a.class_)
    encoded = encode_picture(load_editing_tokenizer(preset), picture)
    plan = plan_edit(preset, encoded.tokens, mask, _spec(a, a.grid or grid))
    config = replace(preset.sampling, seed=a.seed)
    loaded = load_model(preset)
    frames, seconds, event = [], 0.0, None
    for event in run_plan(loaded.transformer, plan, [class_id], config):
        seconds += event.step_seconds
        if not a.out.endswith(".png"):
            frame = step_frame(loaded.tokenizer, plan.schedule, event.tokens[0], event.step,
                               a.size, overlay=a.overlay)
            frames.append(caption(frame, f"step {event.step + 1}/{event.num_steps}"))
    if a.out.endswith(".png"):
        final = step_frame(loaded.tokenizer, plan.schedule, event.tokens[0], event.step, a.size)
        Image.fromarray(final).save(a.out)
    else:
        write_animation(frames, a.out, a.frame_ms)
    print(json.dumps({
        "model": preset.name, "class": class_id,
        "class_name": preset.class_names().names[class_id], "schedule": plan.schedule.spec.label,
        "steps": plan.steps, "kept_cells": plan.kept_cells,
        "generated_cells": plan.generated_cells, "seconds": round(seconds, 4),
        "reconstruction_psnr": round(encoded.psnr, 2), "notes": list(picture.notes),
        "out": a.out,
    }))
def cmd_sample(a: argparse.Namespace) -> int:
    from par_demo.batch_job import job_from_args, run_job
    from par_demo.presets import get_preset

    preset = get_preset(a.model)
    report = run_job(job_from_args(a, preset, _spec(a, a.grid or preset.args.grid)))
    if report is not None:
        print(json.dumps(report))
    return 0


def cmd_models(a: argparse.Namespace) -> int:
    from par_demo.checkpoints import local_weight_file
    from par_demo.presets import PRESETS

    for preset in PRESETS.values():
        files = [preset.weights, preset.tokenizer.weights]
        missing = [f.filename for f in files if local_weight_file(f) is None]
        runs = "any schedule" if preset.runs is None else preset.runs.label
        state = "ready" if not missing else "missing " + ", ".join(missing)
        print(f"{preset.name:24s} {runs:36s} {state}")
    return 0


def cmd_fetch(a: argparse.Namespace) -> int:
    from par_demo.checkpoints import weight_file
    from par_demo.presets import get_preset

    preset = get_preset(a.name)
    for source in (preset.weights, preset.tokenizer.weights):
        print(weight_file(source))
    return 0


def _cell(text: str) -> tuple[int, int]:
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROW,COL (two whole numbers), got {text!r}")
    return row, col


def _nats(map_GG: np.ndarray) -> list[list[float]]:
    return [[round(float(v), 4) for v in row] for row in map_GG]


def cmd_dependency(a: argparse.Namespace) -> int:
    from par_demo.checkpoints import load_model
    from par_demo.dependency import DependencyUnsupported, dependency_map, dependency_refusal
    from par_demo.dependency_figures import draw_dependency
    from par_demo.editing import encode_picture, load_editing_tokenizer
    from par_demo.pictures import read_picture
    from par_demo.presets import get_preset

    preset = get_preset(a.model)
    refusal = dependency_refusal(preset)
    if refusal:
        raise DependencyUnsupported(refusal)
    G = preset.args.grid
    if not all(0 <= v < G for v in a.cell):
        raise ValueError(f"--cell must be ROW,COL with both in 0..{G - 1}, got "
                         f"{a.cell[0]},{a.cell[1]}")
    class_id = None if a.class_ is None else preset.class_names().resolve(a.class_)
    picture = read_picture(a.image, preset.image_size, field="--image")
    tokens = encode_picture(load_editing_tokenizer(preset), picture).tokens
    result = dependency_map(load_model(preset).transformer, tokens, a.cell, class_id)
    draw_dependency(result, picture.image).save(a.out)
    print(json.dumps({
        "model": preset.name, "cell": list(a.cell), "class": class_id,
        "entropy": _nats(result.entropy), "prior_entropy": _nats(result.prior_entropy),
        "out": a.out,
    }))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m par_demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("schedule", help="draw a schedule as the paper's Figure 3")
    _schedule_args(p, grid_default=24)
    p.add_argument("--size", type=int, default=576, help="image side in pixels")
    p.add_argument("--out", default="fig3.png")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("generate", help="generate one image and write its step-by-step animation")
    p.add_argument("--model", default=None, help="a preset name (default: the embedded model)")
    p.add_argument("--class", dest="class_", required=True, help="class index or name")
    _schedule_args(p, grid_default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the model's)")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--greedy", action="store_true", help="argmax instead of sampling")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                   help="transformer weights; auto: float32 for the embedded model, for released "
                   "ones bfloat16 on a GPU and the format measured fastest on a CPU")
    p.add_argument("--previews", choices=("auto", "colours", "decoder"), default="auto",
                   help="frames before the last: drawn from the per-code colour table (a lookup) "
                   "or decoded; auto: the table for released models on a CPU, where their "
                   "decoder takes seconds")
    p.add_argument("--size", type=int, default=256, help="frame side in pixels")
    p.add_argument("--overlay", action="store_true", help="draw the Figure 3 progress on frames")
    p.add_argument("--frame-ms", type=int, default=80)
    p.add_argument("--out", default="run.gif", help=".gif or .mp4")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("edit", help="regenerate a region of a picture; write the picture or "
                       "its step-by-step animation")
    p.add_argument("--model", default=None, help="a preset name (default: the embedded model)")
    p.add_argument("--image", required=True, help="the picture (PNG, JPEG, WebP, GIF...)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--region", choices=REGIONS, help="a preset region to regenerate")
    where.add_argument("--mask", help="a picture of the region: opaque or white pixels "
                       "regenerate, snapped to token cells")
    p.add_argument("--class", dest="class_", required=True, help="class index or name")
    _schedule_args(p, grid_default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="picture / frame side in pixels")
    p.add_argument("--overlay", action="store_true", help="draw the Figure 3 progress on frames")
    p.add_argument("--frame-ms", type=int, default=80)
    p.add_argument("--out", default="edit.png", help=".png (the final picture), .gif or .mp4")
    p.set_defaults(func=cmd_edit)
    p = sub.add_parser("sample", help="many pictures into an ADM-layout .npz; runs under torchrun")
    _schedule_args(p, grid_default=None)
    add_sample_arguments(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("models", help="list the model presets and whether their files are here")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("fetch", help="download a preset's weight files into the hub cache")
    p.add_argument("name")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("dependency", help="how much knowing one cell's token tells about every "
                                          "other cell of a picture (the paper's Figure 9)")
    p.add_argument("--image", required=True, help="a picture; fitted on white to the model's size")
    p.add_argument("--cell", type=_cell, required=True, help="the known cell: ROW,COL")
    p.add_argument("--class", dest="class_", default=None,
                   help="class index or name (default: unconditional)")
    p.add_argument("--model", default=None, help="a preset name (default: the embedded model)")
    p.add_argument("--out", default="dependency.png")
    p.set_defaults(func=cmd_dependency)

    a = parser.parse_args(argv)
    if a.command in ("generate", "edit", "dependency", "sample") and a.model is None:
        from par_demo.presets import DEFAULT_MODEL

        a.model = DEFAULT_MODEL
    try:
        return a.func(a)
    except (ScheduleError, ValueError, KeyError, RuntimeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
