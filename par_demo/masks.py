"""Which token cells an edit regenerates: region presets, or a painted mask snapped to the grid.

A mask file (or a brush layer) is read like a picture (pictures.py: same limits). Painted pixels
are its opaque ones (alpha >= 128) when it has any transparency, else its light ones (luminance
>= 128: white regenerates, black keeps). It must have the picture's proportions, at any scale;
it is padded to a square like the picture (padding unpainted) and a cell is regenerated when at
least COVERAGE of its area is painted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from par_demo.pictures import EditError, PictureSource, open_image, pad_square

REGIONS = ("left", "right", "top", "bottom", "centre", "border")
COVERAGE = 0.25  # share of a cell painted to regenerate it: a stroke grazing its edge keeps it
ASPECT_TOLERANCE = 0.02  # rounding of a scaled mask's sides


@dataclass(frozen=True, eq=False)
class CellMask:
    grid: int
    selected: np.ndarray  # [grid * grid] bool: this cell is regenerated

    @property
    def cells(self) -> np.ndarray:
        """Flat indices of the regenerated cells, in raster order."""
        return np.flatnonzero(self.selected)

    @property
    def count(self) -> int:
        return int(self.selected.sum())


def region_mask(region: str, grid: int) -> CellMask:
    """A preset: a half of the grid, its centre (the middle half of each side) or the border
    around that centre (outpainting)."""
    rows, cols = np.divmod(np.arange(grid * grid), grid)
    half, quarter = grid // 2, grid // 4
    centre = ((rows >= quarter) & (rows < grid - quarter)
              & (cols >= quarter) & (cols < grid - quarter))
    masks = {"left": cols < half, "right": cols >= half, "top": rows < half,
             "bottom": rows >= half, "centre": centre, "border": ~centre}
    if region not in masks:
        raise EditError(f"region: unknown {region!r}; choose one of {', '.join(REGIONS)}")
    return CellMask(grid, masks[region])


def painted_pixels(image: Image.Image) -> np.ndarray:
    """[H, W] bool: the painted pixels (see the module's rule)."""
    if "A" in image.getbands() or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        if alpha.min() < 255:
            return alpha >= 128
    return np.asarray(image.convert("L")) >= 128


def read_mask(source: PictureSource, picture_size: tuple[int, int], grid: int,
              field: str = "mask") -> CellMask:
    """The cells a mask file or brush layer paints, for a picture of `picture_size` (w, h)."""
    image, _ = open_image(source, field)
    (mw, mh), (pw, ph) = image.size, picture_size
    if abs(mw * ph - mh * pw) > ASPECT_TOLERANCE * max(mw * ph, mh * pw):
        raise EditError(f"{field}: {mw}x{mh} pixels does not fit the {pw}x{ph} picture; a mask "
                        "must have the picture's proportions (any scale)")
    painted = Image.fromarray(painted_pixels(image).astype(np.float32))
    coverage = np.asarray(pad_square(painted, 0.0).resize((grid, grid), Image.Resampling.BOX))
    return CellMask(grid, coverage.reshape(-1) >= COVERAGE)
