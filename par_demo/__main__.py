"""Command line: draw schedules, generate step-by-step animations, list and fetch models.

    python -m par_demo schedule --grid 24 --parallel 4 --order distant --out fig3.png
    python -m par_demo schedule --grid 24 --order zipar --window 8 --out zipar.png
    python -m par_demo schedule --grid 16 --order random-cosine --steps 31 --out cosine.png
    python -m par_demo generate --class 3 --parallel 4 --order distant --seed 0 --out run.gif
    python -m par_demo edit --image in.png --region right --class 3 --seed 0 --out edit.gif
    python -m par_demo sample --num-images 50000 --batch 64 --out samples.npz  # or under torchrun
    python -m par_demo models
    python -m par_demo fetch PAR-XL-4x
    python -m par_demo dependency --cell 8,8 --out map.png  # the paper's estimator
    python -m par_demo dependency --method model --image face.png --cell 8,8 --class 0
    python -m par_demo orderings --parallel 16 --out fig11.png  # Figure 11, the estimator
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
from par_demo.orders import (ORDERS, PAR_ORDERS, ScheduleError, ScheduleSpec, build_schedule,
                             validated_spec)


def _schedule_args(p: argparse.ArgumentParser, grid_default: int | None) -> None:
    p.add_argument("--grid", type=int, default=grid_default, help="tokens per side")
    p.add_argument("--parallel", type=int, default=None,
                   help=f"tokens per step: 1, 4 or 16 (default 4; {', '.join(PAR_ORDERS)} only)")
    p.add_argument("--order", choices=ORDERS, default="distant")
    p.add_argument("--no-init", dest="init_tokens", action="store_false",
                   help="skip the sequential initial tokens")
    p.add_argument("--regions", type=int, default=None, help="distant: regions per side")
    p.add_argument("--order-seed", type=int, default=0,
                   help="random and random-cosine orders: their seed")
    p.add_argument("--window", type=int, default=None,
                   help="zipar: row r+1 starts once row r has this many tokens (1..grid)")
    p.add_argument("--steps", type=int, default=None, help="random-cosine: its number of steps")


def _spec(a: argparse.Namespace, grid: int) -> ScheduleSpec:
    """The flags' schedule; ScheduleError names a flag given to an order it does not apply to."""
    parallel = a.parallel if a.parallel is not None else (4 if a.order in PAR_ORDERS else 1)
    try:
        return validated_spec(ScheduleSpec(
            grid=grid, order=a.order, parallel=parallel, init_tokens=a.init_tokens,
            regions=a.regions, seed=a.order_seed, window=a.window, steps=a.steps))
    except ScheduleError as err:
        if err.field is None:
            raise
        raise ScheduleError(f"--{err.field}: {err}") from None


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
    from par_demo.cpu_cost import run_format
    from par_demo.models.weight_format import WeightFormat
    from par_demo.presets import get_preset
    from par_demo.preview import step_frame
    from par_demo.sampler import sample_steps

    preset = get_preset(a.model)
    schedule = preset.check(_spec(a, a.grid or preset.args.grid))
    class_id = preset.class_names().resolve(a.class_)
    config = replace(preset.sampling, seed=a.seed, greedy=a.greedy,
                     **{k: v for k, v in (("cfg_scale", a.cfg), ("temperature", a.temperature),
                                          ("top_k", a.top_k), ("top_p", a.top_p)) if v is not None})
    fmt = (run_format(preset, a.device) if a.dtype == "auto" else
           WeightFormat(getattr(torch, a.dtype.removesuffix("-prepacked")),
                        packed=a.dtype.endswith("-prepacked")))
    loaded = load_model(preset, device=a.device, dtype=fmt.dtype, packed=fmt.packed)
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
        "dtype": str(fmt.dtype).removeprefix("torch."), "prepacked": fmt.packed,
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
        if preset.training_free:
            runs += f" (+ {', '.join(preset.training_free)})"
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
    from par_demo.dependency import information_rings

    if a.method == "estimator":
        result, image, extra = _estimated_dependency(a)
        entropy = [[None if v != v else v for v in row] for row in _nats(result.entropy)]
    else:
        result, image, extra = _model_dependency(a)
        entropy = _nats(result.entropy)
    image.save(a.out)
    rings = information_rings(result.cell, np.nan_to_num(result.information))
    print(json.dumps({
        "method": a.method, "cell": list(result.cell), **extra,
        "information_by_distance": {k: round(v, 4) for k, v in rings.items()},
        "entropy": entropy, "prior_entropy": _nats(result.prior_entropy), "out": a.out,
    }))
    return 0


def _estimated_dependency(a: argparse.Namespace):
    from par_demo.dependency_figures import draw_estimated_map
    from par_demo.training_codes import shipped_maps

    for given, field in ((a.image, "--image"), (a.class_, "--class"), (a.model, "--model")):
        if given is not None:
            raise ValueError(f"{field}: the estimator measures over many pictures, not one "
                             f"picture or model; add --method model for that")
    if a.pictures is None:
        _check_no_folder_options(a)
        maps = shipped_maps()
        result, extra = maps.map(_check_cell(a.cell, maps.prior_entropy.shape[0])), {}
    else:
        estimator, extra = _folder_estimator(a)
        result = estimator.dependency_map(_check_cell(a.cell, estimator.grid))
    return result, draw_estimated_map(result), {"pictures": result.pictures, **extra,
                                                 "information_error": round(result.error, 4)}


def cmd_orderings(a: argparse.Namespace) -> int:
    from par_demo.dependency_figures import draw_estimated_increase
    from par_demo.estimator_orders import CONTEXT_RADIUS, FoldGram, entropy_increase
    from par_demo.training_codes import FIGURE11_ORDERINGS, shipped_orderings

    if a.parallel not in (4, 16):
        raise ValueError(f"--parallel must be 4 or 16 (the paper's Figure 11), got {a.parallel}")
    if a.context_radius is not None and a.context_radius < 1:
        raise ValueError(f"--context-radius must be 1 or more, got {a.context_radius}")
    if a.pictures is None:
        _check_no_folder_options(a)
        if a.context_radius not in (None, CONTEXT_RADIUS):
            raise ValueError(f"--context-radius: the shipped figure uses {CONTEXT_RADIUS}; "
                             f"other radii need --pictures")
        results, extra = [r for r in shipped_orderings() if r.spec.parallel == a.parallel], {}
    else:
        estimator, extra = _folder_estimator(a)
        gram = FoldGram(estimator)
        results = [entropy_increase(gram, ScheduleSpec(estimator.grid, order, parallel, init),
                                    a.context_radius or CONTEXT_RADIUS)
                   for order, parallel, init in FIGURE11_ORDERINGS if parallel == a.parallel]
    draw_estimated_increase(results).save(a.out)
    print(json.dumps({
        "method": "estimator", "pictures": results[0].pictures, **extra,
        "context_radius": results[0].context_radius,
        "orderings": [{"ordering": r.spec.label, "mean_increase": round(r.mean_increase, 4),
                       "error": round(r.error, 4)} for r in results], "out": a.out}))
    return 0


def _check_no_folder_options(a: argparse.Namespace) -> None:
    for given, field in ((a.tokenizer, "--tokenizer"), (a.tokenizer_weights,
                                                        "--tokenizer-weights"),
                         (a.image_size, "--image-size"), (a.limit, "--limit")):
        if given is not None:
            raise ValueError(f"{field}: only with --pictures (the shipped training codes come "
                             f"from the embedded tokenizer)")


def _folder_estimator(a: argparse.Namespace):
    """The estimator over a folder of pictures through a tokenizer (ImageNet and VQ-16 for the
    paper's own measurement)."""
    from par_demo.checkpoints import load_tokenizer, weight_file
    from par_demo.estimator import DependencyEstimator, codebook_features
    from par_demo.folder_codes import encode_folder, picture_files, tokenizer_codebook
    from par_demo.presets import EMBEDDED, TOKENIZERS, VQ16

    presets = {**TOKENIZERS, VQ16.name: VQ16}
    name = a.tokenizer or EMBEDDED.tokenizer.name
    if name not in presets:
        raise ValueError(f"--tokenizer must be one of {', '.join(presets)}, got {name!r}")
    preset = replace(presets[name], args=replace(presets[name].args, with_encoder=True))
    path = Path(a.tokenizer_weights) if a.tokenizer_weights else weight_file(preset.weights)
    tokenizer = load_tokenizer(preset, path).eval()
    size = a.image_size or 16 * preset.args.downsample
    if size < preset.args.downsample or size % preset.args.downsample:
        raise ValueError(f"--image-size must be a multiple of the tokenizer's "
                         f"{preset.args.downsample} pixels a token, got {size}")
    if a.limit is not None and a.limit < 1:
        raise ValueError(f"--limit must be 1 or more, got {a.limit}")
    folder = encode_folder(tokenizer, picture_files(Path(a.pictures), a.limit), size)
    estimator = DependencyEstimator(codebook_features(folder.codes, tokenizer_codebook(tokenizer)))
    return estimator, {"tokenizer": name, "image_size": size, "skipped": list(folder.skipped)}


def _model_dependency(a: argparse.Namespace):
    from par_demo.checkpoints import load_model
    from par_demo.dependency import DependencyUnsupported, dependency_map, dependency_refusal
    from par_demo.dependency_figures import draw_dependency
    from par_demo.editing import encode_picture, load_editing_tokenizer
    from par_demo.pictures import read_picture
    from par_demo.presets import DEFAULT_MODEL, get_preset

    for given, field in ((a.pictures, "--pictures"), (a.tokenizer, "--tokenizer"),
                         (a.tokenizer_weights, "--tokenizer-weights"),
                         (a.image_size, "--image-size"), (a.limit, "--limit")):
        if given is not None:
            raise ValueError(f"{field}: only with the estimator (--method estimator)")
    preset = get_preset(a.model or DEFAULT_MODEL)
    refusal = dependency_refusal(preset)
    if refusal:
        raise DependencyUnsupported(refusal)
    cell = _check_cell(a.cell, preset.args.grid)
    if a.image is None:
        raise ValueError("--image: the model method measures one picture; give its file")
    class_id = None if a.class_ is None else preset.class_names().resolve(a.class_)
    picture = read_picture(a.image, preset.image_size, field="--image")
    tokens = encode_picture(load_editing_tokenizer(preset), picture).tokens
    result = dependency_map(load_model(preset).transformer, tokens, cell, class_id)
    return result, draw_dependency(result, picture.image), {"model": preset.name,
                                                            "class": class_id}


def _folder_args(p: argparse.ArgumentParser) -> None:
    """The estimator's options for running over a folder of pictures instead of the shipped
    training emoji."""
    p.add_argument("--pictures", default=None,
                   help="estimator: a folder of pictures (sub-folders too; e.g. ImageNet) "
                        "instead of the shipped training emoji")
    p.add_argument("--tokenizer", default=None,
                   help="estimator with --pictures: a tokenizer preset, e.g. VQ-16 (LlamaGen's; "
                        "default: the embedded emoji tokenizer)")
    p.add_argument("--tokenizer-weights", default=None,
                   help="estimator with --pictures: the tokenizer's file (default: the preset's)")
    p.add_argument("--image-size", type=int, default=None,
                   help="estimator with --pictures: pictures are centre-cropped to this side "
                        "(default: 16 tokens a side)")
    p.add_argument("--limit", type=int, default=None,
                   help="estimator with --pictures: the first N pictures in path order (the "
                        "paper: 10000)")


def _check_cell(cell: tuple[int, int], grid: int) -> tuple[int, int]:
    if not all(0 <= v < grid for v in cell):
        raise ValueError(f"--cell must be ROW,COL with both in 0..{grid - 1}, got "
                         f"{cell[0]},{cell[1]}")
    return cell


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
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "bfloat16-prepacked",
                                        "float16"), default="auto",
                   help="transformer weights; auto: float32 for the embedded model, for released "
                   "ones bfloat16 on a GPU and the format measured fastest on a CPU "
                   "(bfloat16-prepacked: oneDNN's layout, CPU only)")
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
                                          "other cell (the paper's Figure 9)")
    p.add_argument("--cell", type=_cell, required=True, help="the known cell: ROW,COL")
    p.add_argument("--method", choices=("estimator", "model"), default="estimator",
                   help="estimator: the paper's, over the shipped training emoji (no picture); "
                        "model: what the embedded model believes about one picture")
    _folder_args(p)
    p.add_argument("--image", default=None, help="model: the picture, fitted on white")
    p.add_argument("--class", dest="class_", default=None,
                   help="model: class index or name (default: unconditional)")
    p.add_argument("--model", default=None, help="model: a preset name (default: the embedded)")
    p.add_argument("--out", default="dependency.png")
    p.set_defaults(func=cmd_dependency)

    p = sub.add_parser("orderings", help="how much generating a step's group together raises "
                                         "each cell's entropy, by the paper's estimator "
                                         "(its Figure 11)")
    p.add_argument("--parallel", type=int, default=4, help="tokens per step: 4 or 16")
    p.add_argument("--context-radius", type=int, default=None,
                   help="with --pictures: earlier cells within this many cells feed each "
                        "prediction (default 3; smaller is faster, larger tighter on big sets)")
    _folder_args(p)
    p.add_argument("--out", default="orderings.png")
    p.set_defaults(func=cmd_orderings)

    a = parser.parse_args(argv)
    if a.command in ("generate", "edit", "sample") and a.model is None:
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
