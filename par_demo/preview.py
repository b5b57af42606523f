"""Pictures of a partial generation: decoded previews with pending cells masked, token grids,
entropy maps. Everything returns uint8 RGB arrays [H, W, 3] (or [B, H, W, 3])."""
from __future__ import annotations

import math
import time
from functools import lru_cache

import matplotlib
import numpy as np
import torch

from par_demo.figure3 import draw_schedule
from par_demo.models.vq import VQModel
from par_demo.orders import Schedule

MASK_DARK, MASK_LIGHT = 96, 128  # checkerboard of a pending cell: plainly not image content
FRAME_INTERVAL = 0.08  # seconds between live previews (12.5 per second, what the eye follows)


class FrameClock:
    """Which steps of a live run get a preview: the first, the last, and then a step whenever
    `interval` seconds have passed since the last preview. Decoding so follows the display rate,
    not the step rate: at most once per step, and never for a frame nobody would see."""

    def __init__(self, interval: float = FRAME_INTERVAL, clock=time.perf_counter):
        self.interval, self.clock, self.last = interval, clock, -math.inf

    def due(self, step: int, done: bool) -> bool:
        now = self.clock()
        if step == 0 or done or now - self.last >= self.interval:
            self.last = now
            return True
        return False


def fill_pending(tokens_BL: np.ndarray, grid: int) -> np.ndarray:
    """Give each pending cell (-1) the token of its nearest generated cell, so that the decoder
    sees plausible neighbours around what is known; with nothing known, token 0."""
    out = tokens_BL.copy()
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    for b in range(out.shape[0]):
        known = np.flatnonzero(out[b] >= 0)
        pending = np.flatnonzero(out[b] < 0)
        if not pending.size:
            continue
        if not known.size:
            out[b, pending] = 0
            continue
        d = (rows[pending, None] - rows[None, known]) ** 2 + (cols[pending, None] - cols[None, known]) ** 2
        out[b, pending] = out[b, known[d.argmin(1)]]
    return out


def to_uint8(images_B3HW: torch.Tensor) -> np.ndarray:
    """[-1, 1] images to [B, H, W, 3] uint8."""
    x = ((images_B3HW.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


@lru_cache(maxsize=8)
def _checkerboard(H: int, W: int, f: int) -> np.ndarray:
    """[H, W, 3] uint8 grey checks, f // 2 pixels a side."""
    yy, xx = np.mgrid[0:H, 0:W]
    check = np.where(((yy // max(f // 2, 1)) + (xx // max(f // 2, 1))) % 2, MASK_LIGHT, MASK_DARK)
    return np.repeat(check.astype(np.uint8)[..., None], 3, -1)


def mask_pending(images_BHW3: np.ndarray, tokens_BL: np.ndarray, grid: int) -> np.ndarray:
    """Paint pending cells with a grey checkerboard."""
    B, H, W, _ = images_BHW3.shape
    f = H // grid
    pending = (tokens_BL < 0).reshape(B, grid, grid)
    pixel_pending = pending.repeat(f, 1).repeat(f, 2)
    return np.where(pixel_pending[..., None], _checkerboard(H, W, f)[None], images_BHW3)


def colour_preview(table_V3: np.ndarray, tokens_BL: np.ndarray, grid: int,
                   patch: int) -> np.ndarray:
    """[B, grid * patch, grid * patch, 3] partial grids drawn from a per-code colour table
    (colour_table.py), each cell a flat patch of its code's mean colour, pending cells masked:
    a lookup instead of a decode, for the live frames of models whose decoder is slow."""
    cells = table_V3[np.clip(tokens_BL, 0, None)].reshape(-1, grid, grid, 3)
    return mask_pending(cells.repeat(patch, 1).repeat(patch, 2), tokens_BL, grid)


@torch.inference_mode()
def decode_tokens(tokenizer: VQModel, tokens_BL: np.ndarray, grid: int) -> np.ndarray:
    """[B, H, W, 3] decoded images of complete token grids."""
    device = next(tokenizer.parameters()).device
    codes = torch.as_tensor(tokens_BL, device=device).view(-1, grid, grid)
    return to_uint8(tokenizer.decode_codes(codes))


def masked_preview(tokenizer: VQModel, tokens_BL: np.ndarray, grid: int) -> np.ndarray:
    """[B, H, W, 3] decoded partial grids, pending cells masked rather than shown as noise."""
    images = decode_tokens(tokenizer, fill_pending(tokens_BL, grid), grid)
    return mask_pending(images, tokens_BL, grid)


def _palette(vocab_size: int) -> np.ndarray:
    """A fixed, well-spread colour per token id (golden-ratio hues)."""
    ids = np.arange(vocab_size)
    hue = (ids * 0.6180339887) % 1.0
    sat = 0.55 + 0.45 * ((ids * 7) % 5) / 4
    val = 0.65 + 0.35 * ((ids * 3) % 4) / 3
    hsv = np.stack([hue, sat, val], -1)
    return (matplotlib.colors.hsv_to_rgb(hsv) * 255).astype(np.uint8)


def token_grid_image(tokens_L: np.ndarray, grid: int, vocab_size: int, cell_px: int = 8) -> np.ndarray:
    """The token ids as coloured cells; pending cells dark."""
    rgb = _palette(vocab_size)[np.clip(tokens_L, 0, None)]
    rgb[tokens_L < 0] = (40, 40, 40)
    return rgb.reshape(grid, grid, 3).repeat(cell_px, 0).repeat(cell_px, 1)


def entropy_image(entropy_L: np.ndarray, grid: int, vocab_size: int, cell_px: int = 8) -> np.ndarray:
    """Entropy of each token's distribution, 0 (black) to log(vocab) (white-yellow); pending grey."""
    scaled = np.nan_to_num(entropy_L / np.log(vocab_size), nan=0.0).clip(0, 1)
    rgb = (matplotlib.colormaps["magma"](scaled)[:, :3] * 255).astype(np.uint8)
    rgb[np.isnan(entropy_L)] = (128, 128, 128)
    return rgb.reshape(grid, grid, 3).repeat(cell_px, 0).repeat(cell_px, 1)


def enlarge(image_HW3: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour enlargement to at least `size` pixels, so small images stay crisp."""
    factor = max(1, size // image_HW3.shape[0])
    return image_HW3.repeat(factor, 0).repeat(factor, 1)


def progress_overlay(schedule: Schedule, image_HW3: np.ndarray, step: int) -> np.ndarray:
    """Figure 3 over the image after `step`: done / current / pending cells while the run goes
    on, the whole schedule (no cell marked current) once its last step is done."""
    done = step >= schedule.num_steps - 1
    return np.asarray(draw_schedule(schedule, size=image_HW3.shape[0],
                                    progress=None if done else step, image=image_HW3,
                                    alpha=0.4 if done else 0.55))


def step_frame(tokenizer: VQModel, schedule: Schedule, tokens_L: np.ndarray, step: int,
               size: int, overlay: bool = False, colours: np.ndarray | None = None) -> np.ndarray:
    """One frame of a run, live or exported: the masked preview after `step`, enlarged to `size`
    pixels, with the Figure 3 progress drawn over it when `overlay` is set. With a colour
    table (`colours`), a frame before the last is drawn from it instead of decoded."""
    if colours is not None and step < schedule.num_steps - 1:
        preview = colour_preview(colours, tokens_L[None], schedule.grid,
                                 tokenizer.args.downsample)[0]
    else:
        preview = masked_preview(tokenizer, tokens_L[None], schedule.grid)[0]
    image = enlarge(preview, size)
    return progress_overlay(schedule, image, step) if overlay else image
