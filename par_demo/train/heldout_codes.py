"""Build the shipped held-out set (assets/heldout_codes.npz): a few held-out emoji per class,
encoded by a tokenizer with its encoder. Rerun it whenever the tokenizer is replaced.

    python -m par_demo.train.heldout_codes --data data/emoji64.npz \\
        --tokenizer-weights assets/emoji_tokenizer.safetensors --out assets/heldout_codes.npz

`--per-class 0` keeps the whole held-out split (for measurements; too large to ship).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from par_demo.checkpoints import load_tokenizer
from par_demo.classes import ASSETS
from par_demo.heldout import HELDOUT_CODES, HeldoutGrids, file_sha256
from par_demo.models.vq import VQModel
from par_demo.presets import EMBEDDED
from par_demo.train.emoji_data import EmojiDataset
from par_demo.train.tokenizer import encode_images


def heldout_rows(data: EmojiDataset, per_class: int) -> np.ndarray:
    """The first `per_class` held-out rows of each class (all of them when 0), in dataset order."""
    if per_class < 0:
        raise ValueError(f"per_class must be 0 (all) or more, got {per_class}")
    rows = data.indices("heldout")
    if per_class == 0:
        return rows
    picked = [rows[data.labels[rows] == c][:per_class] for c in range(data.num_classes)]
    return np.concatenate(picked)


@torch.no_grad()
def build_heldout(tokenizer: VQModel, tokenizer_sha256: str, data: EmojiDataset,
                  per_class: int) -> HeldoutGrids:
    rows = heldout_rows(data, per_class)
    codes = encode_images(tokenizer.eval(), data.images[rows], batch=256)
    return HeldoutGrids(codes=codes, labels=data.labels[rows], group=data.group[rows],
                        style=data.style[rows], codebook_size=tokenizer.args.codebook_size,
                        tokenizer_sha256=tokenizer_sha256)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("data/emoji64.npz"))
    p.add_argument("--tokenizer-weights", type=Path,
                   default=ASSETS / EMBEDDED.tokenizer.weights.filename,
                   help="an exported tokenizer with its encoder")
    p.add_argument("--per-class", type=int, default=2, help="pictures per class; 0 = all")
    p.add_argument("--out", type=Path, default=HELDOUT_CODES)
    a = p.parse_args(argv)
    preset = replace(EMBEDDED.tokenizer, args=replace(EMBEDDED.tokenizer.args, with_encoder=True))
    tokenizer = load_tokenizer(preset, a.tokenizer_weights)
    grids = build_heldout(tokenizer, file_sha256(a.tokenizer_weights), EmojiDataset.load(a.data),
                          a.per_class)
    grids.save(a.out)
    print(f"{len(grids)} held-out pictures as {grids.grid}x{grids.grid} grids -> {a.out} "
          f"({a.out.stat().st_size / 1e3:.1f} kB)")


if __name__ == "__main__":
    main()
