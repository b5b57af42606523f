"""Runs: checking a request, streaming a generation or a comparison step by step, and the record of
a run that exports are made from.

The functions that touch the model run through `placed` (machine.py): on ZeroGPU they run in a
worker that holds the GPU, so they take and yield only picklable CPU data (numpy arrays, strings,
records), never tensors. Everything that can be refused is refused before, in `plan_*`, and the
schedule a plan builds is the one the run, its record and its exports use.
"""
from __future__ import annotations

import functools
import time
from contextlib import closing
from dataclasses import dataclass, field, replace
from typing import Callable, ClassVar, Iterator, Sequence

import numpy as np

from par_demo.animation import side_by_side
from par_demo.colour_table import COLOUR_TABLES
from par_demo.editing import EditPlan
from par_demo.orders import Schedule, ScheduleSpec
from par_demo.preview import (FRAME_INTERVAL, colour_preview, enlarge, masked_preview,
                              progress_overlay, step_frame)
from par_demo.sampler import StepEvent
from par_demo.sampling import SamplingConfig
from par_demo.ui.files import FILES
from par_demo.ui import inputs, views
from par_demo.ui.inputs import ComparePlan, RunPlan, plan_run
from par_demo.ui.session import StepWorker
from par_demo.ui.machine import (MODELS, device_label, gpu_seconds, placed, placement,
                                 step_options)

# ---------------------------------------------------------------- the record of a run

@dataclass
class RunRecord:
    """Everything a finished or stopped run leaves: tokens after each step, timing, entropy."""
    model: str
    class_id: int
    class_label: str
    schedule: Schedule
    config: SamplingConfig
    vocab_size: int
    label: str = ""  # short name of the ordering (comparisons)
    tokens: list[np.ndarray] = field(default_factory=list)  # per step: [L] int16, -1 pending
    step_seconds: list[float] = field(default_factory=list)
    entropy: np.ndarray | None = None  # [L] float32, nan where pending
    device: str = ""  # where it ran, e.g. "cpu (1 of 2 cores)"
    step_path: str = ""  # the step forward that ran (sampler.step_path): fast, graphed, plain
    cold: bool = False  # the model was loaded for this run: the first since start

    @classmethod
    def start(cls, loaded, class_id: int, class_label: str, schedule: Schedule,
              config: SamplingConfig, label: str = "", cold: bool = False) -> "RunRecord":
        return cls(loaded.preset.name, class_id, class_label, schedule, config,
                   loaded.preset.args.vocab_size,
                   label or schedule.spec.label,
                   device=device_label(next(loaded.transformer.parameters()).device),
                   cold=cold)

    def add(self, event: StepEvent) -> None:
        self.tokens.append(event.tokens[0].astype(np.int16))
        self.step_seconds.append(float(event.step_seconds))
        self.entropy = event.entropy[0].astype(np.float32)
        self.step_path = "plain (reference)" if event.path == "plain" else event.path

    def snapshot(self) -> "RunRecord":
        return replace(self, tokens=list(self.tokens), step_seconds=list(self.step_seconds))

    @property
    def spec(self) -> ScheduleSpec:
        return self.schedule.spec

    @property
    def num_steps(self) -> int:
        return self.schedule.num_steps

    @property
    def grid(self) -> int:
        return self.schedule.grid

    @property
    def steps_done(self) -> int:
        return len(self.tokens)

    @property
    def complete(self) -> bool:
        return self.steps_done == self.num_steps

    @property
    def elapsed(self) -> float:
        return float(sum(self.step_seconds))

    def frame(self, loaded, step: int, size: int, overlay: bool,
              colours: np.ndarray | None = None) -> np.ndarray:
        """The picture after `step` (0-based), as streamed (live frames of a released model
        from its colour table, `colours`) and as exported (decoded)."""
        return step_frame(loaded.tokenizer, self.schedule, self.tokens[step].astype(np.int64),
                          step, size, overlay, colours)

    def summary(self) -> dict:
        return {
            "model": self.model,
            "class": self.class_id, "class_label": self.class_label,
            "ordering": self.spec.label, "steps": self.num_steps,
            "steps_done": self.steps_done, "complete": self.complete,
            "tokens": self.grid * self.grid, "tokens_per_step_max": max(self.schedule.sizes),
            "speedup_in_steps": round(views.speedup_steps(self.schedule), 4),
            "seconds": round(self.elapsed, 4),
            "ms_per_step": round(self.elapsed / max(self.steps_done, 1) * 1000, 3),
            "seed": self.config.seed, "guidance_scale": self.config.cfg_scale,
            "temperature": self.config.temperature, "top_k": self.config.top_k,
            "device": self.device, "step_path": self.step_path, "cold_start": self.cold,
        }


# ---------------------------------------------------------------- streaming one generation

@dataclass
class RunViews:
    """A run's pictures after one step; the page's components carry these names."""
    output_group: ClassVar[bool] = True  # one output per field (widgets.named)
    image: np.ndarray  # decoded so far, pending cells masked, enlarged
    overlay: np.ndarray  # Figure 3 progress over the image
    tokens: np.ndarray  # token ids as colours
    entropy: np.ndarray  # entropy heat map with its scale


def live_colours(loaded) -> np.ndarray | None:
    """The colour table live frames are drawn from: a released model's on a CPU (its 384 px
    decoder takes seconds there); None on a GPU and for the small models, whose decoders are
    fast enough."""
    on_cpu = next(loaded.tokenizer.parameters()).device.type == "cpu"
    return COLOUR_TABLES.table(loaded.tokenizer) if loaded.preset.large and on_cpu else None


def decoded_preview(loaded, record: RunRecord, step: int, live: bool = False) -> np.ndarray:
    """The masked preview after `step` (0-based) at the tokenizer's size: the one part of a
    frame that needs the model's device. A live frame before the last of a released model is
    drawn from its colour table; the last, replays and exports are decoded."""
    tokens = record.tokens[step][None].astype(np.int64)
    colours = live_colours(loaded) if live and step < record.num_steps - 1 else None
    if colours is not None:
        return colour_preview(colours, tokens, record.grid, loaded.tokenizer.args.downsample)[0]
    return masked_preview(loaded.tokenizer, tokens, record.grid)[0]


def render_views(record: RunRecord, preview: np.ndarray, step: int | None = None) -> RunViews:
    """The pictures after `step` (0-based; default the last step done) from its decoded
    preview; drawn where the page runs, once per frame shown."""
    step = record.steps_done - 1 if step is None else step
    image = enlarge(preview, views.DISPLAY_PX)
    tokens = record.tokens[step].astype(np.int64)
    # a token's entropy is fixed at the step that made it: hide the later ones
    later = record.schedule.step_of_cell.reshape(-1) > step
    entropy = np.where(later, np.nan, record.entropy).astype(np.float32)
    return RunViews(image, progress_overlay(record.schedule, image, step),
                    views.token_grid(tokens, record.grid, record.vocab_size),
                    views.entropy_map(entropy, record.grid, record.vocab_size))


def _replay(record: RunRecord, step: int, device: str | None) -> np.ndarray:
    return decoded_preview(MODELS.get(record.model, device), record, step)


_placed_replay = placed(_replay, duration=20)


def replay_views(record: RunRecord, step: int) -> RunViews:
    """The pictures of a recorded run after `step` (0-based), as they streamed."""
    return render_views(record, _placed_replay(record.model, record, step), step)


def _display(worker: StepWorker, frame_interval: float) -> Iterator[object]:
    """The worker's latest state, at most every `frame_interval` seconds: as soon as a step is
    done, then whatever is newest when a frame is due, and always the last. Closing it stops
    the run."""
    shown, due = 0, 0.0
    try:
        while (latest := worker.latest(shown, due)) is not None:
            state, finished = latest
            yield state
            if finished:
                return
            shown, due = _steps_done(state), time.perf_counter() + frame_interval
    finally:
        worker.stop()


def _steps_done(state) -> int:
    return max(r.steps_done for r in state) if isinstance(state, list) else state.steps_done


def _one_run_ticks(record: RunRecord, events: Iterator[StepEvent]) -> Iterator[Callable]:
    with closing(events):
        for event in events:
            yield functools.partial(record.add, event)


def _generation(plan: RunPlan, frame_interval: float, device: str | None):
    cold = not MODELS.loaded(plan.model, device)
    loaded = MODELS.get(plan.model, device)
    record = RunRecord.start(loaded, plan.class_id, plan.class_label, plan.schedule, plan.config,
                             cold=cold)
    events = MODELS.sampler(loaded)(plan.schedule, [plan.class_id], plan.config,
                                    **step_options())
    worker = StepWorker(_one_run_ticks(record, events), record.snapshot,
                        lambda: record.steps_done)
    with closing(_display(worker, frame_interval)) as states:
        for snapshot in states:
            # decoded here, where the model is (a ZeroGPU worker); the page draws the rest
            yield snapshot, decoded_preview(loaded, snapshot, snapshot.steps_done - 1, live=True)


_placed_generation = placed(
    _generation, duration=lambda plan, *_: gpu_seconds(plan.model, plan.schedule.num_steps))


def generation_stream(plan: RunPlan, frame_interval: float = FRAME_INTERVAL
                      ) -> Iterator[tuple[RunRecord, RunViews]]:
    """(record so far, pictures) once a step is done, then the latest state at most every
    `frame_interval` seconds, and after the last step. The steps run in their own worker at the
    engine's speed; closing the generator stops the run between two steps."""
    with closing(_placed_generation(plan.model, plan, frame_interval)) as states:
        for record, preview in states:
            yield record, render_views(record, preview)


# ---------------------------------------------------------------- streaming a comparison

def compare_frame(loaded, records: Sequence[RunRecord], overlay: bool, tick: int | None = None,
                  size: int = views.PANEL_PX, final_overlay: bool = False,
                  live: bool = False) -> np.ndarray:
    """All panels after step clock `tick` (0-based; default the last); a finished panel holds
    its last step. `overlay` draws the Figure 3 order over the panels still generating,
    `final_overlay` over the finished ones: shown clean, they can be judged side by side.
    `live` frames of a released model come from its colour table."""
    tick = max(r.steps_done for r in records) - 1 if tick is None else tick
    steps = [min(tick, r.steps_done - 1) for r in records]
    colours = live_colours(loaded) if live else None
    panels = [[views.panel(r.frame(loaded, s, size,
                                   final_overlay if s == r.num_steps - 1 else overlay, colours),
                           r.label, s, r.num_steps)]
              for r, s in zip(records, steps)]
    return side_by_side(panels)[0]


def _replay_compare(records: list[RunRecord], overlay: bool, tick: int, final_overlay: bool,
                    device: str | None) -> np.ndarray:
    return compare_frame(MODELS.get(records[0].model, device), records, overlay, tick,
                         final_overlay=final_overlay)


_placed_replay_compare = placed(_replay_compare, duration=20)


def replay_compare(records: Sequence[RunRecord], overlay: bool, tick: int,
                   final_overlay: bool = False) -> np.ndarray:
    """A recorded comparison after step clock `tick` (0-based), drawn as compare_frame."""
    return _placed_replay_compare(records[0].model, list(records), overlay, tick,
                                  final_overlay)


def _clock_ticks(records: list[RunRecord], streams: list[Iterator[StepEvent]]
                 ) -> Iterator[Callable]:
    """One tick of the step clock per item: every unfinished ordering takes one step."""
    try:
        for _ in range(max(r.num_steps for r in records)):
            taken = [(r, next(s)) for r, s in zip(records, streams) if not r.complete]
            yield lambda taken=taken: [r.add(event) for r, event in taken]
    finally:
        for stream in streams:
            stream.close()


def _comparison(plan: ComparePlan, overlay: bool, frame_interval: float, device: str | None):
    cold = not MODELS.loaded(plan.model, device)
    loaded = MODELS.get(plan.model, device)
    records = [RunRecord.start(loaded, plan.class_id, plan.class_label, s, plan.config, key,
                               cold=cold)
               for s, key in zip(plan.schedules, plan.keys)]
    sample = MODELS.sampler(loaded)
    streams = [sample(s, [plan.class_id], plan.config, **step_options()) for s in plan.schedules]
    worker = StepWorker(_clock_ticks(records, streams),
                        lambda: [r.snapshot() for r in records],
                        lambda: max(r.steps_done for r in records))
    with closing(_display(worker, frame_interval)) as states:
        for snapshots in states:
            yield snapshots, compare_frame(loaded, snapshots, overlay, live=True)


_placed_comparison = placed(_comparison, duration=lambda plan, *_: gpu_seconds(
    plan.model, sum(s.num_steps for s in plan.schedules)))


def compare_stream(plan: ComparePlan, overlay: bool = True,
                   frame_interval: float = 2 * FRAME_INTERVAL
                   ) -> Iterator[tuple[list[RunRecord], np.ndarray]]:
    """All orderings advance one step per tick (a shared step clock), so an ordering with fewer
    steps visibly finishes first; frames are streamed at most every `frame_interval` seconds."""
    yield from _placed_comparison(plan.model, plan, overlay, frame_interval)


COMPARE_HEADERS = ["ordering", "window / schedule", "steps", "tokens/step (max)",
                   "speedup (steps)", "time (s)", "ms/step", "speedup (time, vs 1x)"]


def compare_table(records: Sequence[RunRecord], baseline: float | None = None) -> list[list]:
    """One row per ordering. The time speedup is against a 1x run of this comparison, else the
    session's last 1x run of the model (`baseline`), else not shown."""
    ones = [r.elapsed for r in records if r.schedule.one_token_per_step and r.complete]
    reference = ones[0] if ones else baseline
    rows = []
    for r in records:
        done = r.complete
        rows.append([
            r.label, views.schedule_rule(r.spec), r.num_steps, max(r.schedule.sizes),
            round(views.speedup_steps(r.schedule), 2),
            round(r.elapsed, 3) if done else "—",
            round(r.elapsed / max(r.steps_done, 1) * 1000, 2),
            round(reference / r.elapsed, 2) if (done and reference and r.elapsed > 0) else "—",
        ])
    return rows


def warm_up(model: str) -> None:
    """Everything a first run needs, done once before any visitor asks: the model's weights,
    the first ops of the step loop and the decoder, the pictures' drawing and PNG encoding."""
    preset = inputs.usable_preset(model)
    plan = plan_run(preset.name, 0, 16 if preset.runs is None else preset.runs.parallel,
                    "distant", True, preset.sampling.cfg_scale, preset.sampling.temperature,
                    preset.sampling.top_k, 0)
    record = None
    for record, shown in generation_stream(plan):
        for picture in (shown.image, shown.overlay, shown.tokens, shown.entropy):
            FILES.picture(picture)
    if record is not None:
        FILES.picture(compare_frame(MODELS.get(preset.name, placement(preset.name)), [record],
                                     overlay=True))


# ---------------------------------------------------------------- edits and branches

@dataclass(frozen=True)
class EditRunPlan:
    """Edits or branches, one run per plan in `edits` (a branch: the same plan, one seed each;
    a comparison: one ordering each), every run on a shared step clock; `done_tokens` are the
    recorded tokens of the steps the prefix already holds."""
    model: str
    class_id: int
    class_label: str
    edits: tuple[EditPlan, ...]  # one per run
    configs: tuple[SamplingConfig, ...]  # one per run (a branch: one per seed)
    labels: tuple[str, ...]
    done_tokens: tuple[np.ndarray, ...] = ()  # [L] int16 per step done before the prefix's end


def _edit_runs(plan: EditRunPlan, frame_interval: float, device: str | None):
    cold = not MODELS.loaded(plan.model, device)
    loaded = MODELS.get(plan.model, device)
    records = []
    for edit, config, label in zip(plan.edits, plan.configs, plan.labels):
        record = RunRecord.start(loaded, plan.class_id, plan.class_label, edit.schedule,
                                 config, label, cold=cold)
        record.tokens += [t.astype(np.int16) for t in plan.done_tokens]
        record.step_seconds += [0.0] * len(plan.done_tokens)  # taken by the run it continues
        records.append(record)
    sample = MODELS.sampler(loaded)
    streams = [sample(edit.schedule, [plan.class_id], config, prefix=edit.prefix,
                      **step_options()) for edit, config in zip(plan.edits, plan.configs)]
    worker = StepWorker(_clock_ticks(records, streams),
                        lambda: [r.snapshot() for r in records],
                        lambda: max(r.steps_done for r in records))
    with closing(_display(worker, frame_interval)) as states:
        for snapshots in states:
            if len(snapshots) == 1:
                yield snapshots, decoded_preview(loaded, snapshots[0], snapshots[0].steps_done - 1,
                                                 live=True)
            else:
                yield snapshots, compare_frame(loaded, snapshots, overlay=True, live=True)


_placed_edit_runs = placed(_edit_runs, duration=lambda plan, *_: gpu_seconds(
    plan.model, sum(edit.steps for edit in plan.edits)))


def edit_stream(plan: EditRunPlan, frame_interval: float = FRAME_INTERVAL
                ) -> Iterator[tuple[RunRecord, RunViews]]:
    """An edit's (record so far, pictures), streamed like generation_stream."""
    with closing(_placed_edit_runs(plan.model, plan, frame_interval)) as states:
        for records, preview in states:
            yield records[0], render_views(records[0], preview)


def branch_stream(plan: EditRunPlan, frame_interval: float = 2 * FRAME_INTERVAL
                  ) -> Iterator[tuple[list[RunRecord], np.ndarray]]:
    """A branch's runs (one per seed) or a comparison's (one per ordering) on one step clock,
    with their panels side by side."""
    yield from _placed_edit_runs(plan.model, plan, frame_interval)
