"""Every value a visitor (page or API) sends, read strictly and checked in one place, with the one
constant for each limit that both the checks and the page's controls use. A value of the wrong
type or outside its range is refused with a message that names the field and what it accepts;
nothing is read loosely (no "false" read as true, no 4.5 read as 4)."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from par_demo.animation import FRAME_MS_RANGE
from par_demo.classes import ClassError
from par_demo.orders import ORDERS, PAR_ORDERS, Schedule, ScheduleSpec
from par_demo.presets import PRESETS, ModelPreset, UnsupportedSchedule, get_preset
from par_demo.sampling import SamplingConfig
from par_demo.ui.errors import fail, shown
from par_demo.ui.machine import availability

PARALLEL_CHOICES = (1, 4, 16)
GENERATE_ORDERS = ("distant", "raster", "zipar", "diagonal", "random-cosine")
WINDOW_RANGE = (1, 32)  # zipar's window; the grid caps it (build_schedule says so)
DEFAULT_WINDOW = 3  # 74 steps at 16 x 16, near distant 4x's 67
STEPS_RANGE = (1, 32 * 32)  # random-cosine's steps; the grid's cells cap them
DEFAULT_STEPS = 67  # distant 4x's steps at 16 x 16
SEED_RANGE = (0, 2**31 - 1)
GUIDANCE_RANGE = (0.0, 20.0)
TEMPERATURE_RANGE = (0.05, 10.0)  # lower: the logits overflow; higher: uniform noise
GRID_RANGE = (2, 32)  # the schedule explorer's grids
MAX_CLASS_QUERY = 100  # characters of a class query (the longest label has 35)
MAX_UPLOAD_BYTES = 10 << 20  # a picture for the Edit tab; Gradio refuses larger uploads


def usable_preset(model) -> ModelPreset:
    if not isinstance(model, str) or not model.strip():
        fail(f"model must be one of: {', '.join(PRESETS)}; got {shown(model)}")
    try:
        preset = get_preset(model)
    except KeyError:
        fail(f"unknown model {shown(model)}; choose one of: {', '.join(PRESETS)}")
    state = availability()[preset.name]
    if not state.ok:
        fail(state.reason, title=f"{preset.name} is unavailable here")
    return preset


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def number(value, name: str, lo: float, hi: float, integer: bool = False):
    """A JSON number (not a boolean, not a string) within lo..hi; whole when `integer`."""
    kind = "a whole number" if integer else "a number"
    span = f"{_plain(lo)}..{_plain(hi)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(f"{name} must be {kind} in {span}, got {shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        fail(f"{name} must be a finite number in {span}, got {shown(value)}")
    if integer and isinstance(value, float) and not value.is_integer():
        fail(f"{name} must be a whole number in {span}, got {shown(value)}")
    if not lo <= value <= hi:  # exact for ints of any size and floats: no conversion
        fail(f"{name} must be in {span}, got {shown(value)}")  # quoted as sent: 1e+308
    return int(value) if integer else value


def boolean(value, name: str) -> bool:
    """true or false (JSON booleans, or exactly the strings "true" / "false")."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    fail(f"{name} must be true or false, got {shown(value)}")


def choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        fail(f"{name} must be one of: {', '.join(choices)}; got {shown(value)}")
    return value


def class_id(preset: ModelPreset, query) -> tuple[int, str]:
    names = preset.class_names()
    span = f"0..{len(names) - 1}"
    if isinstance(query, bool) or not isinstance(query, (str, int)) or not str(query).strip():
        fail(f"class must be a name or an index {span}, got {shown(query)}")
    if isinstance(query, str) and len(query) > MAX_CLASS_QUERY:
        fail(f"class must be a name or an index {span} (at most {MAX_CLASS_QUERY} "
             f"characters), got {shown(query)}")
    if isinstance(query, int) and not 0 <= query < len(names):
        fail(f"class must be a name or an index {span}, got {shown(query)}")
    try:
        index = names.resolve(query)
    except ClassError as err:
        fail(f"{err}. {preset.name} knows {len(names)} classes: type part of a name, or an "
             f"index {span}.", title="Unknown class")
    return index, names.label(index)


def sampling_config(preset: ModelPreset, cfg, temperature, top_k, seed) -> SamplingConfig:
    return replace(preset.sampling,
                   cfg_scale=float(number(cfg, "guidance scale", *GUIDANCE_RANGE)),
                   temperature=float(number(temperature, "temperature", *TEMPERATURE_RANGE)),
                   top_k=number(top_k, "top-k", 0, preset.args.vocab_size, integer=True),
                   seed=number(seed, "seed", *SEED_RANGE, integer=True))


def parallelism(value) -> int:
    p = number(value, "parallelism", 1, max(PARALLEL_CHOICES), integer=True)
    if p not in PARALLEL_CHOICES:
        fail(f"parallelism must be one of {', '.join(f'{p}x' for p in PARALLEL_CHOICES)}, "
             f"got {shown(value)}")
    return p


def ordering_spec(grid: int, parallel, order, init_tokens, window, steps,
                  orders=ORDERS) -> ScheduleSpec:
    """A form's ordering. A form sends every control, so every value is checked, and each is
    used by the orders it applies to only: parallelism and initial tokens by PAR's orders, the
    window by zipar, the steps by random-cosine."""
    order = choice(order, "ordering", orders)
    parallel, init = parallelism(parallel), boolean(init_tokens, "initial tokens")
    window = number(window, "window", *WINDOW_RANGE, integer=True)
    steps = number(steps, "steps", *STEPS_RANGE, integer=True)
    if order in PAR_ORDERS:
        return ScheduleSpec(grid=grid, order=order, parallel=parallel, init_tokens=init)
    return ScheduleSpec(grid=grid, order=order, parallel=1,
                        window=window if order == "zipar" else None,
                        steps=steps if order == "random-cosine" else None)


def generate_spec(preset: ModelPreset, parallel, order, init_tokens, window=DEFAULT_WINDOW,
                  steps=DEFAULT_STEPS) -> ScheduleSpec:
    return ordering_spec(preset.args.grid, parallel, order, init_tokens, window, steps,
                         GENERATE_ORDERS)


def explorer_spec(grid, parallel, order, init_tokens, window=DEFAULT_WINDOW,
                  steps=DEFAULT_STEPS) -> ScheduleSpec:
    return ordering_spec(number(grid, "grid", *GRID_RANGE, integer=True), parallel, order,
                         init_tokens, window, steps)


def frame_ms(value) -> int:
    return number(value, "frame duration (ms)", *FRAME_MS_RANGE, integer=True)


# ---------------------------------------------------------------- a request's plan

# Orderings a comparison can put side by side: value -> (description, spec without its grid)
COMPARE_ORDERINGS: dict[str, tuple[str, ScheduleSpec]] = {
    "raster 1x": ("raster 1x: one token per step (the baseline)",
                  ScheduleSpec(0, "raster", 1, False)),
    "distant 4x": ("distant 4x: PAR, 4 far-apart tokens per step",
                   ScheduleSpec(0, "distant", 4, True)),
    "distant 16x": ("distant 16x: PAR, 16 far-apart tokens per step",
                    ScheduleSpec(0, "distant", 16, True)),
    "raster 4x": ("raster 4x: 4 neighbouring tokens per step (naive)",
                  ScheduleSpec(0, "raster", 4, True)),
    "raster 16x": ("raster 16x: 16 neighbouring tokens per step (naive)",
                   ScheduleSpec(0, "raster", 16, True)),
    "random 4x": ("random 4x: 4 random tokens per step", ScheduleSpec(0, "random", 4, True)),
    "distant 4x no-init": ("distant 4x without the sequential initial tokens",
                           ScheduleSpec(0, "distant", 4, False)),
    "distant 16x no-init": ("distant 16x without the sequential initial tokens",
                            ScheduleSpec(0, "distant", 16, False)),
    "zipar w2": ("ZipAR, window 2: a row starts once the row above has 2 tokens",
                 ScheduleSpec(0, "zipar", 1, window=2)),
    "zipar w3": ("ZipAR, window 3: a row starts once the row above has 3 tokens",
                 ScheduleSpec(0, "zipar", 1, window=3)),
    "diagonal": ("diagonal wavefront: every cell with row + col = step (NAR)",
                 ScheduleSpec(0, "diagonal", 1)),
    "random-cosine 67": ("random order, 67 growing steps on RandAR's cosine schedule",
                         ScheduleSpec(0, "random-cosine", 1, steps=67)),
    "random-cosine 31": ("random order, 31 growing steps on RandAR's cosine schedule",
                         ScheduleSpec(0, "random-cosine", 1, steps=31)),
}
DEFAULT_COMPARE = ["raster 1x", "distant 4x", "distant 16x", "raster 4x"]


@dataclass(frozen=True)
class RunPlan:
    model: str
    class_id: int
    class_label: str
    schedule: Schedule
    config: SamplingConfig


@dataclass(frozen=True)
class ComparePlan:
    model: str
    class_id: int
    class_label: str
    keys: tuple[str, ...]
    schedules: tuple[Schedule, ...]
    config: SamplingConfig


def _runnable(preset: ModelPreset, spec: ScheduleSpec) -> Schedule:
    try:
        return preset.check(spec)
    except UnsupportedSchedule as err:
        fail(str(err), title="This model cannot run that ordering")


def run_schedule(model, parallel, order, init_tokens, window=DEFAULT_WINDOW,
                 steps=DEFAULT_STEPS) -> tuple[ModelPreset, Schedule]:
    """The model and the schedule of a run, or InputError saying why it cannot run here."""
    preset = usable_preset(model)
    return preset, _runnable(preset, generate_spec(preset, parallel, order, init_tokens, window,
                                                   steps))


def compare_schedules(model, orderings) -> tuple[ModelPreset, tuple[str, ...],
                                                 tuple[Schedule, ...]]:
    """The model, ordering keys and schedules of a comparison, or InputError saying why not."""
    preset = usable_preset(model)
    if not isinstance(orderings, (list, tuple)) or not all(isinstance(k, str) for k in orderings):
        fail(f"orderings must be a list of 2 to 4 of: {', '.join(COMPARE_ORDERINGS)}; got "
             f"{shown(orderings)}", title="Cannot compare these")
    keys = tuple(orderings)
    unknown = [k for k in keys if k not in COMPARE_ORDERINGS]
    if unknown:
        fail(f"unknown ordering {shown(unknown[0])}; choose from: "
             + ", ".join(COMPARE_ORDERINGS), title="Cannot compare these")
    if len(set(keys)) != len(keys):
        fail("each ordering can appear only once", title="Cannot compare these")
    if not 2 <= len(keys) <= 4:
        fail(f"choose 2 to 4 orderings to compare (now {len(keys)})", title="Cannot compare these")
    schedules = tuple(_runnable(preset, replace(COMPARE_ORDERINGS[k][1], grid=preset.args.grid))
                      for k in keys)
    return preset, keys, schedules


def plan_run(model, class_query, parallel, order, init_tokens, cfg, temperature, top_k,
             seed, window=DEFAULT_WINDOW, steps=DEFAULT_STEPS) -> RunPlan:
    preset, schedule = run_schedule(model, parallel, order, init_tokens, window, steps)
    klass, class_label = class_id(preset, class_query)
    config = sampling_config(preset, cfg, temperature, top_k, seed)
    return RunPlan(preset.name, klass, class_label, schedule, config)


def plan_compare(model, class_query, orderings, cfg, temperature, top_k, seed) -> ComparePlan:
    preset, keys, schedules = compare_schedules(model, orderings)
    klass, class_label = class_id(preset, class_query)
    config = sampling_config(preset, cfg, temperature, top_k, seed)
    return ComparePlan(preset.name, klass, class_label, keys, schedules, config)
