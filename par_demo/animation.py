"""Frames to GIF and MP4, captions, and side-by-side panels for comparisons."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

CAPTION_PX = 22
MACRO_BLOCK = 16  # H.264 wants frame sides divisible by this
FRAME_MS_RANGE = (20, 2000)  # frame durations offered and accepted everywhere


def caption_font() -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=13)


def fits_caption(text: str, width: int) -> bool:
    """Whether one line of caption text fits a frame `width` pixels wide."""
    return caption_font().getlength(text) + 8 <= width


def caption(frame_HW3: np.ndarray, text: str) -> np.ndarray:
    """The frame with a white strip of text below it, one strip line per line of `text`."""
    H, W, _ = frame_HW3.shape
    lines = text.split("\n")
    canvas = Image.new("RGB", (W, H + CAPTION_PX * len(lines)), (255, 255, 255))
    canvas.paste(Image.fromarray(frame_HW3), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((4, H + CAPTION_PX * i + CAPTION_PX // 2), line, font=caption_font(),
                  anchor="lm", fill=(0, 0, 0))
    return np.asarray(canvas)


def pad_to(frame_HW3: np.ndarray, height: int, width: int) -> np.ndarray:
    H, W, _ = frame_HW3.shape
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    out[:H, :W] = frame_HW3
    return out


def side_by_side(panels: Sequence[Sequence[np.ndarray]], gap: int = 6) -> list[np.ndarray]:
    """One frame list from several: panel i's frames in column i; a panel that has finished
    holds its last frame until the longest one ends."""
    length = max(len(p) for p in panels)
    height = max(f.shape[0] for p in panels for f in p)
    frames = []
    for t in range(length):
        cells = [pad_to(p[min(t, len(p) - 1)], height, p[0].shape[1]) for p in panels]
        spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
        row = [cells[0]]
        for cell in cells[1:]:
            row += [spacer, cell]
        frames.append(np.concatenate(row, axis=1))
    return frames


def _uniform(frames: Sequence[np.ndarray], block: int = 1) -> np.ndarray:
    height = max(f.shape[0] for f in frames)
    width = max(f.shape[1] for f in frames)
    height, width = -(-height // block) * block, -(-width // block) * block
    return np.stack([pad_to(f, height, width) for f in frames])


def thin(count: int, most: int) -> list[int]:
    """At most `most` indices of `count` items, evenly spread, always the first and the last."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def _merge_repeats(frames: np.ndarray, durations: list[int]) -> tuple[np.ndarray, list[int]]:
    """Consecutive identical frames become one frame shown for their summed time."""
    keep, merged = [0], [durations[0]]
    for i in range(1, len(frames)):
        if np.array_equal(frames[i], frames[keep[-1]]):
            merged[-1] += durations[i]
        else:
            keep.append(i)
            merged.append(durations[i])
    return frames[keep], merged


def _shared_palette(frames: np.ndarray, samples: int = 8) -> Image.Image:
    """One 256-colour palette for every frame, chosen from a few frames spread over the run
    (the last holds every colour of the finished image): GIF's frames can then store only the
    pixels that changed."""
    picks = frames[thin(len(frames), samples)]
    mosaic = Image.fromarray(np.concatenate(list(picks), axis=0))
    return mosaic.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def write_gif(frames: Sequence[np.ndarray], path: str | Path, frame_ms: int = 80,
              last_frame_ms: int = 1500) -> Path:
    """An endlessly looping GIF; the finished image stays up a little longer."""
    stack = _uniform(frames)
    durations = [frame_ms] * (len(stack) - 1) + [max(frame_ms, last_frame_ms)]
    stack, durations = _merge_repeats(stack, durations)
    palette = _shared_palette(stack)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE)
              for f in stack]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=durations, loop=0, disposal=1, optimize=False)
    return Path(path)


def write_mp4(frames: Sequence[np.ndarray], path: str | Path, frame_ms: int = 80,
              last_frame_ms: int = 1500) -> Path:
    """H.264 MP4 (yuv420p, plays in browsers); the last frame is repeated to hold it."""
    fps = 1000.0 / frame_ms
    hold = max(0, round(last_frame_ms / frame_ms) - 1)
    stack = _uniform(list(frames) + [frames[-1]] * hold, MACRO_BLOCK)
    iio.imwrite(path, stack, extension=".mp4", plugin="FFMPEG", fps=fps, codec="libx264",
                pixelformat="yuv420p", macro_block_size=MACRO_BLOCK)
    return Path(path)


def write_animation(frames: Sequence[np.ndarray], path: str | Path, frame_ms: int = 80) -> Path:
    """GIF or MP4, chosen by the file extension."""
    if not frames:
        raise ValueError("no frames to write")
    lo, hi = FRAME_MS_RANGE
    if not lo <= frame_ms <= hi:
        raise ValueError(f"frame duration must be {lo}..{hi} ms, got {frame_ms}")
    suffix = Path(path).suffix.lower()
    if suffix == ".gif":
        return write_gif(frames, path, frame_ms)
    if suffix == ".mp4":
        return write_mp4(frames, path, frame_ms)
    raise ValueError(f"unsupported animation format {suffix!r}: use .gif or .mp4")
