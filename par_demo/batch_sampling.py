"""Pictures whose randomness is their own: picture i of a run with seed S draws every token from
uniforms seeded by (S, i), so it comes out the same whichever batch, process or machine makes it
(up to the float rounding of batched kernels; see README "Batch sampling").

The one sampling path for many pictures: `python -m par_demo sample` (batch_job.py) and the
embedded model's evaluation (train/evaluate.py) both go through `sample_pictures`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.orders import Schedule
from par_demo.preview import to_uint8
from par_demo.sampler import generate
from par_demo.sampling import SamplingConfig


def picture_seed(seed: int, index: int) -> int:
    """A well-mixed 64-bit seed for picture `index` of a run seeded with `seed` (both >= 0)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and picture index must be >= 0, got seed {seed}, index {index}")
    low, high = np.random.SeedSequence([seed, index]).generate_state(2, np.uint32)
    return int(high) << 32 | int(low)


def picture_draws(seed: int, indices: Sequence[int], num_cells: int) -> torch.Tensor:
    """[B, num_cells] uniforms in [0, 1): one per cell of each picture, drawn on the CPU so every
    device gets the same numbers."""
    return torch.stack([
        torch.rand(num_cells, generator=torch.Generator().manual_seed(picture_seed(seed, i)))
        for i in indices])


def even_labels(num: int, num_classes: int) -> np.ndarray:
    """Class of each picture when all classes are asked for: 0, 1, ..., num_classes - 1, 0, ..."""
    return np.arange(num) % num_classes


def sample_tokens(model: Transformer, schedule: Schedule, labels: Sequence[int],
                  indices: Sequence[int], sampling: SamplingConfig) -> np.ndarray:
    """[B, L] tokens of pictures `indices` (their classes `labels`), in one guided batch."""
    if len(labels) != len(indices):
        raise ValueError(f"{len(labels)} labels for {len(indices)} pictures")
    draws_BL = picture_draws(sampling.seed, indices, schedule.grid * schedule.grid)
    result = generate(model, schedule, [int(c) for c in labels], sampling, draws_BL=draws_BL)
    return result.tokens.reshape(len(indices), -1)


@torch.inference_mode()
def decode_pictures(tokenizer: VQModel, tokens_BL: np.ndarray, grid: int,
                    image_size: int | None = None) -> np.ndarray:
    """uint8 [B, H, W, 3]; `image_size` resizes bicubically before rounding, as the official
    sampling scripts do for evaluation (384 px generated, 256 px scored)."""
    device = next(tokenizer.parameters()).device
    codes_BGG = torch.as_tensor(tokens_BL, device=device).view(-1, grid, grid)
    images_B3HW = tokenizer.decode_codes(codes_BGG)
    if image_size is not None and image_size != images_B3HW.shape[-1]:
        images_B3HW = F.interpolate(images_B3HW, size=(image_size, image_size), mode="bicubic")
    return to_uint8(images_B3HW)


def sample_pictures(model: Transformer, tokenizer: VQModel, schedule: Schedule,
                    labels: Sequence[int], indices: Sequence[int], sampling: SamplingConfig,
                    image_size: int | None = None) -> np.ndarray:
    """uint8 [B, H, W, 3] pictures `indices` of the run seeded with `sampling.seed`."""
    tokens_BL = sample_tokens(model, schedule, labels, indices, sampling)
    return decode_pictures(tokenizer, tokens_BL, schedule.grid, image_size)


def sample_all(model: Transformer, tokenizer: VQModel, schedule: Schedule, labels: np.ndarray,
               sampling: SamplingConfig, batch: int) -> np.ndarray:
    """uint8 [N, H, W, 3]: picture i of class labels[i], `batch` pictures per forward."""
    starts = range(0, len(labels), batch)
    return np.concatenate([
        sample_pictures(model, tokenizer, schedule, labels[i:i + batch],
                        range(i, min(i + batch, len(labels))), sampling)
        for i in starts])
