"""Pictures and text the app shows beside the run's frames (preview.step_frame): token grids,
entropy maps with their scale, panels for comparisons and the live status line. All images are uint8 RGB numpy arrays."""
from __future__ import annotations

import math

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from par_demo.animation import caption, fits_caption
from par_demo.orders import Schedule, ScheduleSpec
from par_demo.preview import entropy_image, token_grid_image

DISPLAY_PX = 256  # small images are enlarged (nearest neighbour) to at least this side
PANEL_PX = 192  # one panel of a comparison
COLORBAR_PX = 30
def token_grid(tokens_L: np.ndarray, grid: int, vocab: int, size: int = DISPLAY_PX) -> np.ndarray:
    return token_grid_image(tokens_L, grid, vocab, cell_px=max(1, size // grid))


def entropy_map(entropy_L: np.ndarray, grid: int, vocab: int, size: int = DISPLAY_PX) -> np.ndarray:
    """The entropy heat map with its scale underneath: 0 nats (certain) .. ln(vocab) (uniform)."""
    heat = entropy_image(entropy_L, grid, vocab, cell_px=max(1, size // grid))
    H, W, _ = heat.shape
    ramp = (matplotlib.colormaps["magma"](np.linspace(0, 1, W))[:, :3] * 255).astype(np.uint8)
    canvas = Image.new("RGB", (W, H + COLORBAR_PX), (255, 255, 255))
    canvas.paste(Image.fromarray(heat), (0, 0))
    canvas.paste(Image.fromarray(np.repeat(ramp[None], 8, 0)), (0, H + 2))
    font = ImageFont.load_default(size=11)
    draw = ImageDraw.Draw(canvas)
    y = H + 10 + (COLORBAR_PX - 10) // 2
    draw.text((2, y), "0 nats: certain", font=font, anchor="lm", fill=(0, 0, 0))
    draw.text((W - 2, y), f"{math.log(vocab):.1f}: uniform", font=font, anchor="rm",
              fill=(0, 0, 0))
    return np.asarray(canvas)


def panel(image: np.ndarray, label: str, step: int, num_steps: int) -> np.ndarray:
    """One captioned frame of a comparison or an export; the step goes on a line of its own
    when the label and the longest step text do not fit side by side, for every step alike."""
    longest = f"{label}  ·  step {num_steps}/{num_steps}"
    joint = "  ·  " if fits_caption(longest, image.shape[1]) else "\n"
    return caption(image, f"{label}{joint}step {step + 1}/{num_steps}")


def speedup_steps(schedule: Schedule) -> float:
    """Speedup over one token per step: tokens / steps."""
    return schedule.grid * schedule.grid / schedule.num_steps


def schedule_rule(spec: ScheduleSpec) -> str:
    """What sets an ordering's step sizes, for a table column."""
    if spec.order == "zipar":
        return f"window {spec.window}"
    if spec.order == "diagonal":
        return "row + col = step"
    if spec.order == "random-cosine":
        return f"cosine, S = {spec.steps}"
    if spec.parallel > 1 and spec.init_tokens:
        return f"{spec.parallel} per step after {spec.parallel} single"
    return f"{spec.parallel} per step"


def speedup_text(schedule: Schedule) -> str:
    tokens = schedule.grid * schedule.grid
    if schedule.num_steps == tokens:
        return f"one token per step: the baseline ({tokens} steps for {tokens} tokens)"
    return (f"**{speedup_steps(schedule):.2f}× fewer steps** than one token per step "
            f"({tokens} tokens ÷ {schedule.num_steps} steps)")


def steps_text(schedule: Schedule) -> str:
    """A schedule's step count and speed-up in steps, short enough for two lines on a phone."""
    tokens = schedule.grid * schedule.grid
    if schedule.num_steps == tokens:
        return f"{tokens} steps, one token per step (the baseline)"
    return (f"{schedule.num_steps} steps (**{speedup_steps(schedule):.2f}× fewer** than "
            f"{tokens})")


def live_line(schedule: Schedule, step: int, step_seconds: float, elapsed: float) -> str:
    return (f"Step **{step + 1}** of **{schedule.num_steps}** · "
            f"{step_seconds * 1000:.1f} ms this step · {elapsed:.2f} s so far · "
            + speedup_text(schedule))


def timing_text(model_s: float, wall_s: float | None, device: str, cold: bool) -> str:
    """Which time is which, where it ran, and whether the model had to be loaded first."""
    text = f"model time {model_s:.2f} s (the steps alone)"
    if wall_s is not None:
        text += f" · wall time {wall_s:.2f} s (start to done: previews and streaming included)"
    text += f" · on {device}"
    if cold:
        text += " · first run since start (cold: the model was loaded for it)"
    return text


def estimate_text(estimate: float, elapsed: float) -> str:
    """The image time said before the run against the model time it took."""
    return (f"estimated {estimate:.1f} s before the run, took {elapsed:.1f} s "
            f"({elapsed / estimate:.2f}× the estimate)")


def done_line(schedule: Schedule, elapsed: float, baseline: float | None,
              wall: float | None = None, device: str = "", cold: bool = False,
              estimate: float | None = None) -> str:
    per_step = elapsed / schedule.num_steps * 1000
    text = (f"✓ **Done**: {schedule.num_steps} steps, {per_step:.1f} ms per step · "
            + speedup_text(schedule))
    if baseline and not schedule.one_token_per_step:
        text += (f" · measured **{baseline / elapsed:.2f}× faster** in model time than your 1x "
                 f"run of this model ({baseline:.2f} s)")
    elif not schedule.one_token_per_step:
        text += " · run a 1x ordering once to measure the speedup in time as well"
    if estimate:
        text += " · " + estimate_text(estimate, elapsed)
    return text + "  \n" + timing_text(elapsed, wall, device, cold)


def stopped_line(schedule: Schedule, steps_done: int, elapsed: float) -> str:
    return (f"■ Stopped at step {steps_done} of {schedule.num_steps} (model time "
            f"{elapsed:.2f} s). Replay its steps with the slider, or export the partial run.")
