"""The paper's Figure 3, drawn: a schedule as a grid of cells coloured by step.

Step numbers appear where cells are large enough to read, region boundaries are dashed, and the
sequential initial tokens get a heavy outline. The same drawing blends over an image, and has a
progress form for streaming (done / current / pending cells). Kept cells of an edit (cells the
schedule does not generate) are crossed by a grey diagonal and show the picture unveiled. Drawn
with PIL so that a frame costs about a millisecond.
"""
from __future__ import annotations

from functools import lru_cache

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from par_demo.orders import Schedule, region_bounds

PENDING_RGB = (225, 225, 225)
CURRENT_RGB = (255, 64, 64)
INIT_OUTLINE_RGB = (20, 20, 20)
REGION_RGB = (30, 30, 30)
KEPT_RGB = (245, 245, 245)
KEPT_MARK_RGB = (150, 150, 150)
MIN_CELL_FOR_NUMBERS = 18


def step_colors(num_steps: int) -> np.ndarray:
    """[num_steps, 3] uint8: early steps dark blue, late steps yellow (viridis)."""
    cmap = matplotlib.colormaps["viridis"]
    return (cmap(np.linspace(0.0, 1.0, max(num_steps, 1)))[:, :3] * 255).astype(np.uint8)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _dashed(draw: ImageDraw.ImageDraw, xy0, xy1, width: int, dash: int = 6) -> None:
    (x0, y0), (x1, y1) = xy0, xy1
    length = max(abs(x1 - x0), abs(y1 - y0))
    for s in range(0, length, 2 * dash):
        e = min(s + dash, length)
        f0, f1 = s / length, e / length
        draw.line([(x0 + (x1 - x0) * f0, y0 + (y1 - y0) * f0),
                   (x0 + (x1 - x0) * f1, y0 + (y1 - y0) * f1)], fill=REGION_RGB, width=width)


def _cell_box(cell: int, grid: int, cell_px: float):
    r, c = divmod(int(cell), grid)
    return (round(c * cell_px), round(r * cell_px),
            round((c + 1) * cell_px) - 1, round((r + 1) * cell_px) - 1)


def cell_rgb(schedule: Schedule, progress: int | None = None) -> np.ndarray:
    """[G, G, 3] cell colours: by step, or done / current / pending at step `progress`."""
    steps = schedule.step_of_cell
    rgb = step_colors(schedule.num_steps)[steps]
    if progress is not None:
        rgb[steps > progress] = PENDING_RGB
        rgb[steps == progress] = CURRENT_RGB
    rgb[steps < 0] = KEPT_RGB
    return rgb


def draw_schedule(
    schedule: Schedule,
    size: int = 576,
    progress: int | None = None,
    image: Image.Image | np.ndarray | None = None,
    alpha: float = 0.55,
    numbers: bool | None = None,
) -> Image.Image:
    """Figure 3 for `schedule` as a `size` x `size` RGB image.

    progress: index of the step being generated (cells after it pending, before it done).
    image: draw over this picture; cell colours are blended in with `alpha`, done cells show
    the picture clearly, pending cells are veiled.
    numbers: print 1-based step numbers; None prints them when cells are big enough.
    """
    G = schedule.grid
    cell_px = size / G
    rgb = cell_rgb(schedule, progress)
    grid_img = Image.fromarray(rgb, "RGB").resize((size, size), Image.NEAREST)
    if image is not None:
        base = image if isinstance(image, Image.Image) else Image.fromarray(image)
        base = base.convert("RGB").resize((size, size), Image.NEAREST)
        if progress is None:
            canvas = Image.blend(base, grid_img, alpha)
            kept_px = np.asarray(Image.fromarray((schedule.step_of_cell < 0).astype(np.uint8))
                                 .resize((size, size), Image.NEAREST), dtype=bool)
            canvas = Image.fromarray(np.where(kept_px[..., None], np.asarray(base),
                                              np.asarray(canvas)))
        else:
            steps = schedule.step_of_cell
            weight = np.where(steps < progress, 0.0, np.where(steps == progress, alpha, 0.8))
            weight[steps < 0] = 0.0
            w = np.asarray(Image.fromarray((weight * 255).astype(np.uint8))
                           .resize((size, size), Image.NEAREST), dtype=np.float32)[..., None] / 255
            mixed = np.asarray(base, np.float32) * (1 - w) + np.asarray(grid_img, np.float32) * w
            canvas = Image.fromarray(mixed.round().astype(np.uint8))
    else:
        canvas = grid_img
    draw = ImageDraw.Draw(canvas)

    if cell_px >= 6 and image is None:
        for i in range(1, G):
            p = round(i * cell_px)
            draw.line([(p, 0), (p, size)], fill=(255, 255, 255), width=1)
            draw.line([(0, p), (size, p)], fill=(255, 255, 255), width=1)

    if schedule.spec.order == "distant":
        row_edges, col_edges = region_bounds(G, schedule.sequence, schedule.spec.regions_per_side)
        width = max(2, size // 200)
        top, bottom = round(row_edges[0] * cell_px), round(row_edges[-1] * cell_px)
        left, right = round(col_edges[0] * cell_px), round(col_edges[-1] * cell_px)
        for c in col_edges[1:-1]:
            _dashed(draw, (round(c * cell_px), top), (round(c * cell_px), bottom), width)
        for r in row_edges[1:-1]:
            _dashed(draw, (left, round(r * cell_px)), (right, round(r * cell_px)), width)

    for cell in schedule.kept_cells:
        x0, y0, x1, y1 = _cell_box(cell, G, cell_px)
        draw.line([(x0, y1), (x1, y0)], fill=KEPT_MARK_RGB, width=max(1, round(cell_px / 12)))

    outline = max(2, round(cell_px / 8))
    for t in range(schedule.num_init_steps):
        for cell in schedule.steps[t]:
            draw.rectangle(_cell_box(cell, G, cell_px), outline=INIT_OUTLINE_RGB, width=outline)
    if progress is not None:
        for cell in schedule.steps[progress]:
            draw.rectangle(_cell_box(cell, G, cell_px), outline=CURRENT_RGB, width=outline)

    if numbers is None:
        numbers = image is None and cell_px >= MIN_CELL_FOR_NUMBERS
    if numbers:
        font = _font(max(6, int(cell_px * (0.42 if schedule.num_steps < 100 else 0.34))))
        luminance = rgb @ np.array([0.299, 0.587, 0.114])
        for cell, step in enumerate(schedule.step_of_cell.reshape(-1)):
            if step < 0:
                continue
            x0, y0, x1, y1 = _cell_box(cell, G, cell_px)
            dark = luminance.reshape(-1)[cell] > 140
            draw.text(((x0 + x1) / 2, (y0 + y1) / 2), str(step + 1), font=font, anchor="mm",
                      fill=(0, 0, 0) if dark else (255, 255, 255))
    return canvas
