"""The flags of `python -m par_demo sample` (batch_job.py runs it); argparse only, so building
the command line imports no torch."""
from __future__ import annotations

import argparse

DTYPES = ("float32", "bfloat16", "float16")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags besides the schedule's (which __main__ adds for every command)."""
    p.add_argument("--model", default=None, help="a preset name (default: the embedded model)")
    p.add_argument("--num-images", type=int, required=True,
                   help="pictures in all (not --num: torchrun takes that for --numa-binding)")
    p.add_argument("--class", dest="class_", default=None,
                   help="class index or name (default: every class in turn, evenly)")
    p.add_argument("--batch", type=int, default=32, help="pictures per forward on each rank")
    p.add_argument("--seed", type=int, default=0, help="picture i draws from a seed of (seed, i)")
    p.add_argument("--cfg", type=float, default=None, help="guidance scale (default: the model's)")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="transformer weights; bfloat16 is the usual choice on a GPU")
    p.add_argument("--image-size", type=int, default=None,
                   help="resize to this side (the paper scores 384 px samples at 256)")
    p.add_argument("--out", required=True, help="the .npz to write (arr_0 images, arr_1 labels)")
    p.add_argument("--png-dir", default=None, help="also write each picture as <index>.png here")
