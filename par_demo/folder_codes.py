"""Any folder of pictures as token grids through a tokenizer, for the paper's estimator
(estimator.py): how the paper measured Figure 9, on 10,000 ImageNet pictures through LlamaGen's
VQ-16 at 256 px (16 x 16 tokens). Pictures are centre-cropped square and resized, as LlamaGen
prepares ImageNet; sub-folders are read too (ImageNet keeps one per class).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from par_demo.models.vq import VQModel
from par_demo.pictures import open_image, to_rgb

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


@dataclass(frozen=True)
class FolderCodes:
    codes: np.ndarray  # [N, G, G] token ids, one grid per picture read
    files: tuple[Path, ...]  # the pictures, in the order of `codes`
    skipped: tuple[str, ...]  # "file: why" for each picture file that could not be read


def picture_files(folder: Path, limit: int | None = None) -> list[Path]:
    """The first `limit` picture files under `folder` in sorted path order (all for None)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--pictures: no folder at {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PICTURE_SUFFIXES)
    if not files:
        raise ValueError(f"--pictures: no picture files ({', '.join(PICTURE_SUFFIXES)}) under "
                         f"{folder}")
    return files[:limit]


def centre_square(path: Path, size: int) -> np.ndarray:
    """[size, size, 3] uint8: the largest centred square of the picture, resized."""
    image, notes = open_image(path, str(path))
    rgb = to_rgb(image, str(path), notes)
    side = min(rgb.size)
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    return np.array(square.resize((size, size), Image.Resampling.BICUBIC), dtype=np.uint8)


@torch.inference_mode()
def encode_folder(tokenizer: VQModel, files: list[Path], size: int,
                  batch: int = 32) -> FolderCodes:
    """Every readable picture of `files` through the tokenizer's encoder; unreadable ones are
    skipped and named."""
    device = next(tokenizer.parameters()).device
    grids, read, skipped, pending = [], [], [], []

    def flush():
        x = torch.as_tensor(np.stack(pending), device=device).permute(0, 3, 1, 2).float()
        grids.append(tokenizer.encode(x / 127.5 - 1).codes.cpu().numpy())
        pending.clear()

    for path in files:
        try:
            pending.append(centre_square(path, size))
            read.append(path)
        except ValueError as err:
            skipped.append(str(err))
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    if not read:
        raise ValueError("--pictures: none of the files could be read: " + "; ".join(skipped[:3]))
    return FolderCodes(np.concatenate(grids).astype(np.int64), tuple(read), tuple(skipped))


def tokenizer_codebook(tokenizer: VQModel) -> np.ndarray:
    """[V, D] the codebook vectors as the decoder looks them up."""
    with torch.no_grad():
        return tokenizer.quantize.codebook().double().cpu().numpy()
