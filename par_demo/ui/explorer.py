"""Understand: the schedule explorer (Figure 3 for any grid, parallelism and ordering, scrubbed or
animated step by step) and the uncertainty of the last run (entropy per token and per step)."""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from par_demo.animation import caption, write_animation  # noqa: E402
from par_demo.figure3 import draw_schedule  # noqa: E402
from par_demo.orders import Schedule, ScheduleError, build_schedule  # noqa: E402
from par_demo.ui import inputs, views  # noqa: E402
from par_demo.ui.errors import fail  # noqa: E402
from par_demo.ui.files import FILES  # noqa: E402
from par_demo.ui.runs import RunRecord  # noqa: E402

FIGURE_PX = 480
NO_SCHEDULE = "This schedule cannot exist"
ANIMATION_PX = 360
MAX_ANIMATION_FRAMES = 120  # longer schedules show several steps per frame


def describe(schedule: Schedule) -> str:
    spec = schedule.spec
    parts = [f"**{spec.label}** on a {spec.grid}×{spec.grid} grid: **{schedule.num_steps} steps** "
             f"for {spec.grid * spec.grid} tokens · " + views.speedup_text(schedule)]
    if schedule.num_init_steps:
        parts.append(f"The first {schedule.num_init_steps} steps (heavy outlines) make one token "
                     f"each, {_initial_cells(spec.order)}: the sequential initial tokens.")
    if spec.order == "distant" and spec.parallel > 1:
        parts.append("Dashed lines split the grid into regions; each later step makes one token "
                     "at the same relative position in every region, so tokens generated "
                     "together are far apart.")
    parts += RIVAL_NOTES.get(spec.order, ())
    parts.append("Colours run from dark blue (early) to yellow (late); numbers are steps.")
    return "\n\n".join(parts)


def _initial_cells(order: str) -> str:
    """Which cells the initial tokens are: only the distant ordering spreads them over regions."""
    return {"distant": "one per region (PAR's stage 1)",
            "raster": "the first cells in reading order (along the top row), not one per region",
            }.get(order, "the first cells of the random sequence, not one per region")


RIVAL_NOTES = {
    "zipar": ["ZipAR (arXiv 2412.04062): the first row one token per step, then each row starts "
              "once the row above holds *window* tokens, and every step takes the next token of "
              "each row under way: 2G + (G − 2)·w steps. Window = grid side is raster 1x."],
    "diagonal": ["The diagonal wavefront (as in NAR): step d makes every cell with row + column "
                 "= d, 2G − 1 steps; tokens made together touch corner to corner."],
    "random-cosine": ["A random order in growing steps (RandAR's cosine schedule): after step "
                      "s, ⌊(1 − cos(π/2 · (s+1)/S))·N⌋ + 1 cells are done."],
}


def explored_schedule(grid, parallel, order, init_tokens, window=inputs.DEFAULT_WINDOW,
                      steps=inputs.DEFAULT_STEPS) -> Schedule:
    """The explorer's schedule, or InputError: a bad value, or a schedule that cannot exist."""
    try:
        return build_schedule(inputs.explorer_spec(grid, parallel, order, init_tokens, window,
                                                   steps))
    except ScheduleError as err:
        fail(str(err), title=NO_SCHEDULE)


def schedule_figure(grid, parallel, order, init_tokens, window=inputs.DEFAULT_WINDOW,
                    steps=inputs.DEFAULT_STEPS) -> tuple[np.ndarray, str, int]:
    """Figure 3, its description and its number of steps."""
    schedule = explored_schedule(grid, parallel, order, init_tokens, window, steps)
    image = np.asarray(draw_schedule(schedule, size=FIGURE_PX))
    return image, describe(schedule), schedule.num_steps


def schedule_progress(grid, parallel, order, init_tokens, step, window=inputs.DEFAULT_WINDOW,
                      steps=inputs.DEFAULT_STEPS) -> np.ndarray:
    """Figure 3 as it stands after `step` (1-based) steps: done, current (red), pending (grey)."""
    schedule = explored_schedule(grid, parallel, order, init_tokens, window, steps)
    step = inputs.number(step, "step", 1, schedule.num_steps, integer=True)
    frame = np.asarray(draw_schedule(schedule, size=ANIMATION_PX, progress=step - 1))
    return caption(frame, f"step {step}/{schedule.num_steps}")


def schedule_animation(grid, parallel, order, init_tokens, frame_ms, session=None,
                       window=inputs.DEFAULT_WINDOW, steps=inputs.DEFAULT_STEPS) -> str:
    """A looping GIF of the schedule filling in; returns its path."""
    schedule = explored_schedule(grid, parallel, order, init_tokens, window, steps)
    frame_ms = inputs.frame_ms(frame_ms)
    every = math.ceil(schedule.num_steps / MAX_ANIMATION_FRAMES)
    shown = list(range(every - 1, schedule.num_steps - 1, every)) + [schedule.num_steps - 1]
    frames = [caption(np.asarray(draw_schedule(schedule, size=ANIMATION_PX, progress=t)),
                      f"step {t + 1}/{schedule.num_steps}") for t in shown]
    spec = schedule.spec
    name = f"schedule_{spec.grid}x{spec.grid}_{spec.slug}_{frame_ms}ms.gif"
    return str(write_animation(frames, FILES.session_dir(session) / name, frame_ms))


# ---------------------------------------------------------------- uncertainty

def entropy_chart(record: RunRecord, width_px: int = 640, height_px: int = 260) -> np.ndarray:
    """Mean entropy of the tokens of each step, initial-token steps marked."""
    schedule = record.schedule
    step_of_cell = schedule.step_of_cell.reshape(-1)
    entropy = record.entropy
    steps = np.arange(record.steps_done)
    means = np.array([np.nanmean(entropy[step_of_cell == t]) for t in steps])
    dpi = 100
    fig, ax = plt.subplots(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    ax.plot(steps + 1, means, color="#4f46e5", lw=1.5, marker="o" if len(steps) < 80 else None,
            ms=3)
    if schedule.num_init_steps:
        ax.axvspan(0.5, schedule.num_init_steps + 0.5, color="#f59e0b", alpha=0.2,
                   label="sequential initial tokens")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.axhline(math.log(record.vocab_size), color="#999", ls="--", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("mean entropy (nats)")
    ax.set_ylim(0, math.log(record.vocab_size) * 1.05)
    ax.set_xlim(0.5, record.num_steps + 0.5)
    ax.grid(alpha=0.25)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return np.asarray(Image.open(buf).convert("RGB"))


def uncertainty_views(record: RunRecord | None):
    """(entropy map, chart of entropy per step, text) for the last run; empty before one."""
    if record is None or record.entropy is None or not record.tokens:
        return None, None, "Generate an image first: its uncertainty appears here."
    heat = views.entropy_map(record.entropy, record.grid, record.vocab_size, size=384)
    chart = entropy_chart(record)
    done = ~np.isnan(record.entropy)
    text = (f"**{record.label}**, class {record.class_label}, seed {record.config.seed}: mean "
            f"entropy {np.nanmean(record.entropy[done]):.2f} nats over {int(done.sum())} tokens "
            f"(uniform over {record.vocab_size} codes would be {math.log(record.vocab_size):.2f}).")
    return heat, chart, text
