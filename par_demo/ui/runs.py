"""Runs: checking a request, streaming a generation or a comparison step by step, and the record of
a run that exports are made from.

The functions that touch the model are wrapped in `gpu` (spaces.GPU): on ZeroGPU they run in a
worker that holds the GPU, so they take and yield only picklable CPU data (numpy arrays, strings,
records), never tensors. Everything that can be refused is refused before, in `plan_*`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import numpy as np

from par_demo.animation import side_by_side
from par_demo.presets import ModelPreset, get_preset
from par_demo.classes import ClassError
from par_demo.orders import Schedule, ScheduleSpec, build_schedule
from par_demo.sampler import SamplingConfig, StepEvent, sample_steps
from par_demo.ui import views
from par_demo.ui.errors import fail
from par_demo.ui.models import MODELS, availability, gpu, placement

PARALLEL_CHOICES = (1, 4, 16)
GENERATE_ORDERS = ("distant", "raster")
FRAME_INTERVAL = 0.08  # seconds between streamed frames (~12 per second); fast runs skip some
MAX_SEED = 2**31 - 1

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
}
DEFAULT_COMPARE = ["raster 1x", "distant 4x", "distant 16x", "raster 4x"]


# ---------------------------------------------------------------- checking a request

@dataclass(frozen=True)
class RunPlan:
    model: str
    class_id: int
    class_label: str
    spec: ScheduleSpec
    config: SamplingConfig


@dataclass(frozen=True)
class ComparePlan:
    model: str
    class_id: int
    class_label: str
    keys: tuple[str, ...]
    specs: tuple[ScheduleSpec, ...]
    config: SamplingConfig


def usable_preset(model: str | None) -> ModelPreset:
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


def _number(value, name: str, integer: bool = False) -> float:
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


def resolve_class(preset: ModelPreset, query) -> tuple[int, str]:
    names = preset.class_names()
    if query is None or not str(query).strip():
        fail(f"choose a class (0..{len(names) - 1} or part of a name)")
    try:
        index = names.resolve(query)
    except ClassError as err:
        fail(f"{err}. {preset.name} knows {len(names)} classes: type part of a name, or an "
             f"index 0..{len(names) - 1}.", title="Unknown class")
    return index, names.label(index)


GUIDANCE_MAX = 20.0
TEMPERATURE_MAX = 10.0


def sampling_config(preset: ModelPreset, cfg, temperature, top_k, seed) -> SamplingConfig:
    seed = _number(seed, "seed", integer=True)
    if not 0 <= seed <= MAX_SEED:
        fail(f"seed must be in 0..{MAX_SEED}, got {seed}")
    config = replace(preset.sampling, cfg_scale=_number(cfg, "guidance scale"),
                     temperature=_number(temperature, "temperature"),
                     top_k=_number(top_k, "top-k", integer=True), seed=seed)
    try:
        config.validate()
    except ValueError as err:
        fail(str(err))
    if config.cfg_scale > GUIDANCE_MAX:
        fail(f"guidance scale must be at most {GUIDANCE_MAX:g}, got {config.cfg_scale:g}")
    if config.temperature > TEMPERATURE_MAX:
        fail(f"temperature must be at most {TEMPERATURE_MAX:g}, got {config.temperature:g}")
    vocab = preset.args.vocab_size
    if config.top_k > vocab:
        fail(f"top-k must be at most the codebook size {vocab} (0 keeps all), "
             f"got {config.top_k}")
    return config


def schedule_spec(preset: ModelPreset, parallel, order, init_tokens) -> ScheduleSpec:
    parallel = _number(parallel, "parallelism", integer=True)
    if parallel not in PARALLEL_CHOICES:
        fail(f"parallelism must be one of {', '.join(f'{p}x' for p in PARALLEL_CHOICES)}, "
             f"got {parallel}")
    if order not in GENERATE_ORDERS:
        fail(f"ordering must be one of {', '.join(GENERATE_ORDERS)}, got {order!r}")
    return ScheduleSpec(grid=preset.args.grid, order=order, parallel=parallel,
                        init_tokens=bool(init_tokens))


def plan_run(model, class_query, parallel, order, init_tokens, cfg, temperature, top_k,
             seed) -> RunPlan:
    preset = usable_preset(model)
    spec = schedule_spec(preset, parallel, order, init_tokens)
    reason = preset.unsupported_reason(spec)
    if reason:
        fail(reason, title="This model cannot run that ordering")
    class_id, class_label = resolve_class(preset, class_query)
    config = sampling_config(preset, cfg, temperature, top_k, seed)
    return RunPlan(preset.name, class_id, class_label, spec, config)


def compare_reason(preset: ModelPreset, keys: Sequence[str]) -> str | None:
    """Why these orderings cannot be compared with this model, or None."""
    keys = list(keys or [])
    unknown = [k for k in keys if k not in COMPARE_ORDERINGS]
    if unknown:
        return (f"unknown ordering {unknown[0]!r}; choose from: "
                + ", ".join(COMPARE_ORDERINGS))
    if len(set(keys)) != len(keys):
        return "each ordering can appear only once"
    if not 2 <= len(keys) <= 4:
        return f"choose 2 to 4 orderings to compare (now {len(keys)})"
    if preset.runs is not None:
        return (f"{preset.name} runs only {preset.runs.label}, so there is nothing to compare; "
                "comparisons need a model that runs any ordering (the embedded one)")
    for key in keys:
        spec = replace(COMPARE_ORDERINGS[key][1], grid=preset.args.grid)
        reason = preset.unsupported_reason(spec)
        if reason:
            return reason
    return None


def plan_compare(model, class_query, orderings, cfg, temperature, top_k, seed) -> ComparePlan:
    preset = usable_preset(model)
    if isinstance(orderings, str):
        orderings = [o.strip() for o in orderings.split(",") if o.strip()]
    keys = tuple(orderings or ())
    reason = compare_reason(preset, keys)
    if reason:
        fail(reason, title="Cannot compare these")
    class_id, class_label = resolve_class(preset, class_query)
    config = sampling_config(preset, cfg, temperature, top_k, seed)
    specs = tuple(replace(COMPARE_ORDERINGS[k][1], grid=preset.args.grid) for k in keys)
    return ComparePlan(preset.name, class_id, class_label, keys, specs, config)


# ---------------------------------------------------------------- the record of a run

@dataclass
class RunRecord:
    """Everything a finished or stopped run leaves: tokens after each step, timing, entropy."""
    model: str
    title: str  # the model's display title (says "random weights" for the stand-in)
    random_weights: bool
    class_id: int
    class_label: str
    spec: ScheduleSpec
    config: SamplingConfig
    num_steps: int
    vocab_size: int
    label: str = ""  # short name of the ordering (comparisons)
    tokens: list[np.ndarray] = field(default_factory=list)  # per step: [L] int16, -1 pending
    step_seconds: list[float] = field(default_factory=list)
    entropy: np.ndarray | None = None  # [L] float32, nan where pending
    stopped: bool = False

    @classmethod
    def start(cls, loaded, class_id: int, class_label: str, schedule: Schedule,
              config: SamplingConfig, label: str = "") -> "RunRecord":
        return cls(loaded.preset.name, loaded.title, loaded.random_weights, class_id,
                   class_label, schedule.spec, config, schedule.num_steps,
                   loaded.preset.args.vocab_size, label or schedule.spec.label)

    def add(self, event: StepEvent) -> None:
        self.tokens.append(event.tokens[0].astype(np.int16))
        self.step_seconds.append(float(event.step_seconds))
        self.entropy = event.entropy[0].astype(np.float32)

    def snapshot(self) -> "RunRecord":
        return replace(self, tokens=list(self.tokens), step_seconds=list(self.step_seconds))

    @property
    def schedule(self) -> Schedule:
        return build_schedule(self.spec)

    @property
    def grid(self) -> int:
        return self.spec.grid

    @property
    def steps_done(self) -> int:
        return len(self.tokens)

    @property
    def complete(self) -> bool:
        return self.steps_done == self.num_steps

    @property
    def elapsed(self) -> float:
        return float(sum(self.step_seconds))

    def summary(self) -> dict:
        schedule = self.schedule
        return {
            "model": self.title, "random_weights": self.random_weights,
            "class": self.class_id, "class_label": self.class_label,
            "ordering": self.spec.label, "steps": self.num_steps,
            "steps_done": self.steps_done, "complete": self.complete,
            "tokens": self.grid * self.grid, "tokens_per_step_max": max(schedule.sizes),
            "speedup_in_steps": round(views.speedup_steps(schedule), 4),
            "seconds": round(self.elapsed, 4),
            "ms_per_step": round(self.elapsed / max(self.steps_done, 1) * 1000, 3),
            "seed": self.config.seed, "guidance_scale": self.config.cfg_scale,
            "temperature": self.config.temperature, "top_k": self.config.top_k,
        }


# ---------------------------------------------------------------- streaming one generation

@dataclass
class RunViews:
    image: np.ndarray  # decoded so far, pending cells masked, enlarged
    overlay: np.ndarray  # Figure 3 progress over the image
    tokens: np.ndarray  # token ids as colours
    entropy: np.ndarray  # entropy heat map with its scale


def render_views(loaded, record: RunRecord, schedule: Schedule) -> RunViews:
    tokens = record.tokens[-1].astype(np.int64)
    image = views.preview(loaded.tokenizer, tokens, record.grid,
                          views.DISPLAY_PX)
    step = None if record.complete else record.steps_done - 1
    return RunViews(image, views.overlay(schedule, image, step),
                    views.token_grid(tokens, record.grid, record.vocab_size),
                    views.entropy_map(record.entropy, record.grid, record.vocab_size))


def generation_stream(plan: RunPlan, frame_interval: float = FRAME_INTERVAL
                      ) -> Iterator[tuple[RunRecord, RunViews]]:
    """(record so far, pictures) after the first step, then at most every `frame_interval`
    seconds, and after the last step. Closing the generator stops the run between steps."""
    device = placement(plan.model)
    run = _generation if device == "cpu" else _generation_on_gpu
    yield from run(plan, frame_interval, device)


def _generation(plan: RunPlan, frame_interval: float, device: str | None):
    loaded = MODELS.get(plan.model, device)
    schedule = build_schedule(plan.spec)
    record = RunRecord.start(loaded, plan.class_id, plan.class_label, schedule, plan.config)
    events = sample_steps(loaded.transformer, schedule, [plan.class_id], plan.config)
    last = -math.inf
    try:
        for event in events:
            record.add(event)
            if event.done or event.step == 0 or time.perf_counter() - last >= frame_interval:
                yield record.snapshot(), render_views(loaded, record, schedule)
                last = time.perf_counter()
    finally:
        events.close()


_generation_on_gpu = gpu(duration=90)(_generation)


# ---------------------------------------------------------------- streaming a comparison

def compare_frame(loaded, records: Sequence[RunRecord], schedules: Sequence[Schedule],
                  overlay: bool, size: int = views.PANEL_PX) -> np.ndarray:
    panels = []
    for record, schedule in zip(records, schedules):
        image = views.preview(loaded.tokenizer, record.tokens[-1].astype(np.int64), record.grid,
                              size)
        if overlay:
            image = views.overlay(schedule, image,
                                  None if record.complete else record.steps_done - 1)
        panels.append([views.panel(image, record.label, record.steps_done - 1,
                                   record.num_steps)])
    return side_by_side(panels)[0]


def compare_stream(plan: ComparePlan, overlay: bool = True,
                   frame_interval: float = 2 * FRAME_INTERVAL
                   ) -> Iterator[tuple[list[RunRecord], np.ndarray]]:
    """All orderings advance one step per tick (a shared step clock), so an ordering with fewer
    steps visibly finishes first; frames are streamed at most every `frame_interval` seconds."""
    device = placement(plan.model)
    run = _comparison if device == "cpu" else _comparison_on_gpu
    yield from run(plan, overlay, frame_interval, device)


def _comparison(plan: ComparePlan, overlay: bool, frame_interval: float, device: str | None):
    loaded = MODELS.get(plan.model, device)
    schedules = [build_schedule(spec) for spec in plan.specs]
    records = [RunRecord.start(loaded, plan.class_id, plan.class_label, s, plan.config, key)
               for s, key in zip(schedules, plan.keys)]
    streams = [sample_steps(loaded.transformer, s, [plan.class_id], plan.config)
               for s in schedules]
    last = -math.inf
    try:
        for tick in range(max(s.num_steps for s in schedules)):
            for record, stream in zip(records, streams):
                if not record.complete:
                    record.add(next(stream))
            finished = all(r.complete for r in records)
            if finished or tick == 0 or time.perf_counter() - last >= frame_interval:
                yield ([r.snapshot() for r in records],
                       compare_frame(loaded, records, schedules, overlay))
                last = time.perf_counter()
    finally:
        for stream in streams:
            stream.close()


_comparison_on_gpu = gpu(duration=180)(_comparison)


COMPARE_HEADERS = ["ordering", "steps", "tokens/step", "speedup (steps)", "time (s)", "ms/step",
                   "speedup (time, vs 1x)"]


def compare_table(records: Sequence[RunRecord], baseline: float | None = None) -> list[list]:
    """One row per ordering. The time speedup is against a 1x run of this comparison, else the
    session's last 1x run of the model (`baseline`), else not shown."""
    ones = [r.elapsed for r in records if r.spec.parallel == 1 and r.complete]
    reference = ones[0] if ones else baseline
    rows = []
    for r in records:
        schedule = r.schedule
        done = r.complete
        rows.append([
            r.label, r.num_steps, max(schedule.sizes),
            round(views.speedup_steps(schedule), 2),
            round(r.elapsed, 3) if done else "—",
            round(r.elapsed / max(r.steps_done, 1) * 1000, 2),
            round(reference / r.elapsed, 2) if (done and reference and r.elapsed > 0) else "—",
        ])
    return rows
