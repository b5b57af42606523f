"""A picture as the embedded model's tokens: fitted to the tokenizer's size on white and encoded
by the shipped encoder (the tokenizer file holds it; the app's decoder-only load leaves it out)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from par_demo.checkpoints import load_tokenizer, weight_file
from par_demo.models.vq import VQModel
from par_demo.presets import ModelPreset
from par_demo.train.tokenizer import to_model_range


class PictureError(ValueError):
    """A file that is not a readable picture."""


def load_encoder(preset: ModelPreset, device="cpu") -> VQModel:
    """The preset's tokenizer with its encoder."""
    with_encoder = replace(preset.tokenizer,
                           args=replace(preset.tokenizer.args, with_encoder=True))
    return load_tokenizer(with_encoder, weight_file(preset.tokenizer.weights, download=False),
                          device)


def read_picture(path: str | Path) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (FileNotFoundError, IsADirectoryError):
        raise PictureError(f"--image: no file at {path}") from None
    except (UnidentifiedImageError, OSError) as err:
        raise PictureError(f"--image: {path} is not a picture PIL can read ({err})") from None


def fit_picture(image: Image.Image, size: int) -> np.ndarray:
    """[size, size, 3] uint8: transparency composited on white (as the training data), the
    picture centred on a white square and resized."""
    rgba = image.convert("RGBA")
    side = max(rgba.size)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    return np.array(square.convert("RGB").resize((size, size), Image.Resampling.LANCZOS))


@torch.no_grad()
def encode_picture(encoder: VQModel, picture_HW3: np.ndarray) -> np.ndarray:
    """[G*G] token ids of one picture already at the tokenizer's size."""
    x = to_model_range(picture_HW3[None], next(encoder.parameters()).device)
    return encoder.encode(x).codes.reshape(-1).cpu().numpy().astype(np.int64)
