"""Command line: draw schedules, generate step-by-step animations, list and fetch models.

    python -m par_demo schedule --grid 24 --parallel 4 --order distant --out fig3.png
    python -m par_demo generate --class 3 --parallel 4 --order distant --seed 0 --out run.gif
    python -m par_demo sample --num-images 50000 --batch 64 --out samples.npz  # or under torchrun
    python -m par_demo models
    python -m par_demo fetch PAR-XL-4x
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

import numpy as np

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
    from par_demo.presets import get_preset
    from par_demo.preview import step_frame
    from par_demo.sampler import sample_steps

    preset = get_preset(a.model)
    schedule = preset.check(_spec(a, a.grid or preset.args.grid))
    class_id = preset.class_names().resolve(a.class_)
    config = replace(preset.sampling, seed=a.seed, greedy=a.greedy,
                     **{k: v for k, v in (("cfg_scale", a.cfg), ("temperature", a.temperature),
                                          ("top_k", a.top_k), ("top_p", a.top_p)) if v is not None})
    loaded = load_model(preset, device=a.device, dtype=getattr(torch, a.dtype))
    frames, step_seconds = [], []
    event = None
    for event in sample_steps(loaded.transformer, schedule, [class_id], config):
        step_seconds.append(event.step_seconds)
        frame = step_frame(loaded.tokenizer, schedule, event.tokens[0], event.step, a.size,
                           overlay=a.overlay)
        frames.append(caption(frame, f"step {event.step + 1}/{event.num_steps}"))
    write_animation(frames, a.out, a.frame_ms)
    print(json.dumps({
        "model": preset.name, "class": class_id,
        "class_name": preset.class_names().names[class_id], "schedule": schedule.spec.label,
        "steps": schedule.num_steps, "tokens_per_step_max": max(schedule.sizes),
        "seconds": round(sum(step_seconds), 4),
        "seconds_per_step": round(float(np.mean(step_seconds)), 6),
        "out": a.out,
    }))
    return 0


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
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                   help="transformer weights; bfloat16 is the usual choice on a GPU")
    p.add_argument("--size", type=int, default=256, help="frame side in pixels")
    p.add_argument("--overlay", action="store_true", help="draw the Figure 3 progress on frames")
    p.add_argument("--frame-ms", type=int, default=80)
    p.add_argument("--out", default="run.gif", help=".gif or .mp4")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("sample", help="many pictures into an ADM-layout .npz; runs under torchrun")
    _schedule_args(p, grid_default=None)
    add_sample_arguments(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("models", help="list the model presets and whether their files are here")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("fetch", help="download a preset's weight files into the hub cache")
    p.add_argument("name")
    p.set_defaults(func=cmd_fetch)

    a = parser.parse_args(argv)
    if a.command in ("generate", "sample") and a.model is None:
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
