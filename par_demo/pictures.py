"""Reading a visitor's picture (or mask) file: refused with a message naming the field, or made
into what the model takes.

Accepted: anything Pillow reads (PNG, JPEG, WebP, GIF...). An animated file gives its first
frame, transparency is composited on white, CMYK is converted to RGB and 16-bit greyscale is
reduced to 8 bits (each noted in `Picture.notes`). Refused: not an image, a damaged or truncated
file, fewer than MIN_SIDE pixels a side, more than MAX_PIXELS pixels (a decompression bomb is
refused from its header, before it is decoded), floating-point pixels. A picture of any shape is
padded to a square on white (centred) and resized to the model's size.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MIN_SIDE = 16  # at least one pixel per token cell of a 16 x 16 grid
MAX_PIXELS = 25_000_000  # 5000 x 5000; larger is a bomb or a poster, not a picture to edit
ORIGINAL_MAX_SIDE = 512  # the original is kept at most this large, for showing beside the edit
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")

PictureSource = bytes | str | Path | Image.Image


class EditError(ValueError):
    """A picture, mask or edit request that cannot be used; the message names the field."""


@dataclass(frozen=True, eq=False)
class Picture:
    image: np.ndarray  # [size, size, 3] uint8: padded square, resized; what the encoder takes
    original: np.ndarray  # [h, w, 3] uint8: as read, on white, at most ORIGINAL_MAX_SIDE a side
    source_size: tuple[int, int]  # (width, height) of the file's picture
    notes: tuple[str, ...] = ()  # what was done to the file to read it


def open_image(source: PictureSource, field: str) -> tuple[Image.Image, list[str]]:
    """The first frame of `source`, decoded, and notes on what was done; EditError otherwise."""
    if isinstance(source, Image.Image):
        image = source
    elif not isinstance(source, bytes) and not Path(source).is_file():
        raise EditError(f"{field}: no file at {str(source)[:60]!r}")
    else:
        stream = io.BytesIO(source) if isinstance(source, bytes) else source
        try:
            with warnings.catch_warnings():  # our own limit below is lower than Pillow's
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(stream)
        except Image.DecompressionBombError:
            raise EditError(f"{field}: too many pixels; at most {MAX_PIXELS:,} "
                            "(5000 x 5000)") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise EditError(f"{field}: not an image file that can be read (PNG, JPEG, WebP or "
                            "GIF)") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise EditError(f"{field}: {width}x{height} pixels is too large; at most {MAX_PIXELS:,} "
                        "pixels (5000 x 5000)")
    if min(width, height) < MIN_SIDE:
        raise EditError(f"{field}: {width}x{height} pixels is too small; it needs at least "
                        f"{MIN_SIDE} pixels a side")
    notes = []
    frames = getattr(image, "n_frames", 1)
    try:
        if frames > 1:
            image.seek(0)
            notes.append(f"animated: the first of its {frames} frames is used")
        image.load()
    except (OSError, ValueError, SyntaxError, EOFError):
        raise EditError(f"{field}: the file is damaged or truncated") from None
    return image, notes


def to_rgb(image: Image.Image, field: str, notes: list[str]) -> Image.Image:
    """RGB on white: every mode Pillow reads except floating point."""
    if image.mode == "F":
        raise EditError(f"{field}: floating-point pixels are not supported; save it as an "
                        "8-bit PNG or JPEG")
    if image.mode in SIXTEEN_BIT_MODES:
        grey = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(grey.clip(0, 255).round().astype(np.uint8), "L")
        notes.append("16-bit greyscale reduced to 8 bits")
    if image.mode == "CMYK":
        notes.append("CMYK converted to RGB")
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    if rgba.getextrema()[3][0] < 255:
        notes.append("transparency composited on white")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def pad_square(image: Image.Image, fill) -> Image.Image:
    """`image` centred on a square canvas of `fill`."""
    side = max(image.size)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def read_picture(source: PictureSource, size: int, field: str = "picture") -> Picture:
    image, notes = open_image(source, field)
    rgb = to_rgb(image, field, notes)
    resized = pad_square(rgb, (255, 255, 255)).resize((size, size), Image.Resampling.LANCZOS)
    original = rgb.copy()
    original.thumbnail((ORIGINAL_MAX_SIDE, ORIGINAL_MAX_SIDE), Image.Resampling.LANCZOS)
    return Picture(np.asarray(resized), np.asarray(original), rgb.size, tuple(notes))
