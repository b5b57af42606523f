"""Every value a visitor (page or API) sends, read and checked in one place, with the one constant
for each limit that both the checks and the page's controls use."""
from __future__ import annotations

import math
from dataclasses import replace

from par_demo.animation import FRAME_MS_RANGE
from par_demo.classes import ClassError
from par_demo.orders import ORDERS, ScheduleError, ScheduleSpec
from par_demo.presets import ModelPreset, get_preset
from par_demo.sampling import SamplingConfig
from par_demo.ui.errors import fail
from par_demo.ui.machine import availability

PARALLEL_CHOICES = (1, 4, 16)
GENERATE_ORDERS = ("distant", "raster")
SEED_RANGE = (0, 2**31 - 1)
GUIDANCE_RANGE = (0.0, 20.0)
TEMPERATURE_RANGE = (0.05, 10.0)  # the page's floor; the API takes any value above 0
GRID_RANGE = (2, 32)  # the schedule explorer's grids


def usable_preset(model) -> ModelPreset:
    if not model:
        fail("choose a model")
    try:
        preset = get_preset(str(model))
    except KeyError as err:
        fail(str(err.args[0]))
    state = availability()[preset.name]
    if not state.ok:
        fail(state.reason, title=f"{preset.name} is unavailable here")
    return preset


def number(value, name: str, integer: bool = False) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        fail(f"{name} is required")
    try:
        number = float(value)
    except (TypeError, ValueError):
        fail(f"{name} must be a number, got {value!r}")
    if not math.isfinite(number):
        fail(f"{name} must be a finite number, got {value!r}")
    if integer:
        if number != int(number):
            fail(f"{name} must be a whole number, got {value!r}")
        return int(number)
    return number


def class_id(preset: ModelPreset, query) -> tuple[int, str]:
    names = preset.class_names()
    if query is None or not str(query).strip():
        fail(f"choose a class (0..{len(names) - 1} or part of a name)")
    try:
        index = names.resolve(query)
    except ClassError as err:
        fail(f"{err}. {preset.name} knows {len(names)} classes: type part of a name, or an "
             f"index 0..{len(names) - 1}.", title="Unknown class")
    return index, names.label(index)


def sampling_config(preset: ModelPreset, cfg, temperature, top_k, seed) -> SamplingConfig:
    seed = number(seed, "seed", integer=True)
    lo, hi = SEED_RANGE
    if not lo <= seed <= hi:
        fail(f"seed must be in {lo}..{hi}, got {seed}")
    config = replace(preset.sampling, cfg_scale=number(cfg, "guidance scale"),
                     temperature=number(temperature, "temperature"),
                     top_k=number(top_k, "top-k", integer=True), seed=seed)
    try:
        config.validate()
    except ValueError as err:
        fail(str(err))
    if config.cfg_scale > GUIDANCE_RANGE[1]:
        fail(f"guidance scale must be at most {GUIDANCE_RANGE[1]:g}, got {config.cfg_scale:g}")
    if config.temperature > TEMPERATURE_RANGE[1]:
        fail(f"temperature must be at most {TEMPERATURE_RANGE[1]:g}, "
             f"got {config.temperature:g}")
    vocab = preset.args.vocab_size
    if config.top_k > vocab:
        fail(f"top-k must be at most the codebook size {vocab} (0 keeps all), "
             f"got {config.top_k}")
    return config


def generate_spec(preset: ModelPreset, parallel, order, init_tokens) -> ScheduleSpec:
    parallel = number(parallel, "parallelism", integer=True)
    if parallel not in PARALLEL_CHOICES:
        fail(f"parallelism must be one of {', '.join(f'{p}x' for p in PARALLEL_CHOICES)}, "
             f"got {parallel}")
    if order not in GENERATE_ORDERS:
        fail(f"ordering must be one of {', '.join(GENERATE_ORDERS)}, got {order!r}")
    return ScheduleSpec(grid=preset.args.grid, order=order, parallel=parallel,
                        init_tokens=bool(init_tokens))


def explorer_spec(grid, parallel, order, init_tokens) -> ScheduleSpec:
    try:
        grid, parallel = int(grid), int(parallel)
    except (TypeError, ValueError):
        raise ScheduleError(f"grid and parallelism must be whole numbers, got {grid!r}, "
                            f"{parallel!r}") from None
    lo, hi = GRID_RANGE
    if not lo <= grid <= hi:
        raise ScheduleError(f"the grid must be {lo}..{hi} tokens per side, got {grid}")
    if order not in ORDERS:
        raise ScheduleError(f"unknown ordering {order!r}; choose one of {', '.join(ORDERS)}")
    return ScheduleSpec(grid=grid, order=order, parallel=parallel, init_tokens=bool(init_tokens))


def frame_ms(value) -> int:
    try:
        ms = int(round(float(value)))
    except (TypeError, ValueError):
        fail(f"frame duration must be a number of milliseconds, got {value!r}")
    lo, hi = FRAME_MS_RANGE
    if not lo <= ms <= hi:
        fail(f"frame duration must be {lo}..{hi} ms, got {ms}")
    return ms
