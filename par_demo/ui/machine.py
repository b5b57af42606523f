"""What this machine can run and where a run goes: model availability, GPU dispatch, CPU threads,
and a cache of the loaded models.

Availability is decided once at start-up from local files only (no network): the embedded model
always runs; a released checkpoint needs its weight files already on disk (assets/ or the Hugging
Face cache, e.g. through the Space's `preload_from_hub`). It runs on the GPU when there is one,
else on the CPU in the weight format measured fastest here, with the image time it will take.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import platform
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator

import spaces  # before anything touches CUDA (a no-op off ZeroGPU)
import torch
from spaces.config import Config as SpacesConfig

from par_demo.checkpoints import LoadedModel, load_model, local_weight_file
from par_demo.colour_table import COLOUR_TABLES
from par_demo.cpu_cost import CPU_COSTS, run_format
from par_demo.presets import PRESETS, ModelPreset, get_preset
from par_demo.sampler import StepEvent, sample_steps
from par_demo.step_process import ENDED, StepProcess
from par_demo.ui.cpu_lane import CPU_LANE

log = logging.getLogger("par_demo.ui")
gpu = spaces.GPU  # returns the function unchanged unless the app runs on ZeroGPU


def on_zero_gpu() -> bool:
    return SpacesConfig.zero_gpu


def gpu_available() -> bool:
    """A GPU now (CUDA) or on demand (ZeroGPU attaches one inside @spaces.GPU functions)."""
    return on_zero_gpu() or torch.cuda.is_available()


def configure_cpu_threads(concurrent_runs: int) -> int:
    """Share the CPU between the runs the queue lets through at once. torch's default (a thread
    per core for every run) oversubscribes the cores as soon as two runs, or anything else, share
    them, and its spinning threads then make a run 10x slower. PAR_TORCH_THREADS overrides."""
    threads = int(os.environ.get("PAR_TORCH_THREADS", "0")) or max(
        1, (os.cpu_count() or 1) // max(1, concurrent_runs))
    torch.set_num_threads(threads)
    return threads


def placement(model: str) -> str | None:
    """Where a run of `model` goes: "cpu" for the small models on ZeroGPU (they need no GPU, so
    they spend no visitor's GPU quota and wait for no GPU slot); None for "inside a @gpu
    function, on the GPU if there is one" (see run_device)."""
    return "cpu" if on_zero_gpu() and not get_preset(model).large else None


def run_device() -> str:
    """Where a run goes; called inside the @gpu functions, where ZeroGPU has attached its GPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def step_options() -> dict:
    """How runs take their steps: the fast path unless PAR_PLAIN_STEPS=1 asks for the plain
    module forward (the reference); no CUDA graphs on ZeroGPU, whose GPU is attached per call
    (a graph captured in one call would point at memory of another)."""
    return {"fast": os.environ.get("PAR_PLAIN_STEPS") != "1",
            "graphs": False if on_zero_gpu() else None}


@lru_cache(maxsize=1)
def cpu_name() -> str:
    """The CPU's model name (Linux), else what the platform says."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8", errors="replace"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_label(device: torch.device) -> str:
    """The device a run ran on, as the run's summary and status line report it."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({cpu_name()}, {torch.get_num_threads()} of {os.cpu_count()} cores)"


def gpu_seconds(model: str, steps: int) -> int:
    """ZeroGPU reservation for `steps` steps of `model`: a fixed allowance for attaching the GPU,
    moving the weights and warming up, plus three times a step bound that grows with the weights
    (2 ms of launches and sampling, and 1 ms per billion parameters), so short runs of small
    models ask for less and queue first."""
    args = get_preset(model).args
    billions = args.n_layer * 12 * args.dim ** 2 / 1e9
    return math.ceil(15 + 3 * steps * (2 + billions) / 1000)


def placed(fn, duration):
    """`fn(*args, device)` as `call(model, *args)`: run where `placement(model)` says, so on the
    CPU directly or else inside a @gpu worker that may hold the GPU for `duration` seconds (or
    `duration(*args, device)` seconds: spaces.GPU accepts a function of the call)."""
    on_gpu = gpu(duration=duration)(fn)

    @functools.wraps(fn)
    def call(model: str, *args):
        device = placement(model)
        return (fn if device == "cpu" else on_gpu)(*args, device)
    return call


@dataclass(frozen=True)
class Availability:
    preset: ModelPreset
    reason: str | None  # why it cannot run here; None when it can
    on_cpu: bool = False  # a released model on a machine without a GPU: it runs, slowly

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def cost_note(self) -> str | None:
        """What a CPU run costs, as measured so far ("runs on this CPU, about N s per image")."""
        return CPU_COSTS.cost(self.preset).note if self.on_cpu else None

    @property
    def label(self) -> str:
        """The model dropdown's text for this preset."""
        name = self.preset.name
        if self.reason:
            return f"{name} (unavailable)"
        if self.on_cpu:
            return f"{name} (CPU, about {CPU_COSTS.cost(self.preset).image_seconds:.0f} s)"
        return name


def check_availability(preset: ModelPreset, gpu: bool | None = None,
                       cache_dir: str | None = None) -> Availability:
    """Whether `preset` runs here: its files must be on disk; a released model without a GPU
    (`gpu`, default: this machine's) runs on the CPU, and its cost is measured now."""
    files = [preset.weights, preset.tokenizer.weights]
    missing = [f for f in files if local_weight_file(f, cache_dir) is None]
    if missing:
        f = missing[0]
        return Availability(preset, f"{f.filename} is not on this machine; {f.fetch_hint}")
    on_cpu = preset.large and not (gpu_available() if gpu is None else gpu)
    if on_cpu:
        with CPU_LANE.all_cores():  # the threads its runs will have (cpu_lane.py)
            CPU_COSTS.cost(preset)
    return Availability(preset, None, on_cpu)


@lru_cache(maxsize=1)
def availability() -> dict[str, Availability]:
    """Every preset's availability, computed once (local files only)."""
    return {name: check_availability(p) for name, p in PRESETS.items()}


class ModelCache:
    """Loaded models per (preset, device); loading is serialised, runs share the weights. A
    small model on the CPU also has a process that takes its runs' steps (step_process.py)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[tuple[str, str], LoadedModel] = {}
        self._steppers: dict[tuple[str, str], list[_Stepper]] = {}

    def loaded(self, name: str, device: str | None = None) -> bool:
        """Whether a run of `name` finds it loaded (else it is the first since start: cold)."""
        with self._lock:
            return (get_preset(name).name, device or run_device()) in self._models

    def get(self, name: str, device: str | None = None) -> LoadedModel:
        preset = get_preset(name)
        device = device or run_device()
        key = (preset.name, device)
        with self._lock:
            if key not in self._models:
                # download=False: start-up decided availability from local files; never fetch here
                fmt = run_format(preset, device)
                loaded = load_model(preset, device=device, dtype=fmt.dtype, download=False,
                                    packed=fmt.packed)
                if preset.large and device == "cpu":  # with the load, not mid-run (runs.py)
                    COLOUR_TABLES.table(loaded.tokenizer)
                self._models[key] = loaded
            return self._models[key]

    def sampler(self, loaded: LoadedModel) -> Callable[..., Iterator[StepEvent]]:
        """sample_steps for `loaded` (its arguments after the model). A small model's steps on
        the CPU, a few ms each and mostly interpreter time, run in a step process of their
        own; a large model's, or a GPU's, run here."""
        device = next(loaded.transformer.parameters()).device.type
        if loaded.preset.large or device != "cpu":
            return functools.partial(sample_steps, loaded.transformer)
        return functools.partial(self._stepped, loaded)

    def _stepped(self, loaded: LoadedModel, *args, **kwargs) -> Iterator[StepEvent]:
        """A run's steps in a step process; in this one if that process ends before the
        run's first step (it could not start here), so a run never fails for it."""
        stepper = self._take_stepper(loaded)
        started = False
        try:
            for event in stepper.process.sample_steps(*args, **kwargs):
                started = True
                yield event
        except RuntimeError as err:
            if started or str(err) != ENDED:
                raise
            log.warning("the step process ended before a first step; this run steps here")
            yield from sample_steps(loaded.transformer, *args, **kwargs)
        finally:
            with self._lock:
                stepper.runs -= 1

    def _take_stepper(self, loaded: LoadedModel) -> "_Stepper":
        """The least busy of the model's step processes; a new one when all are busy and
        there are fewer than the runs the cores take at once, or none is alive."""
        key = (loaded.preset.name, "cpu")
        with self._lock:
            pool = [s for s in self._steppers.get(key, []) if s.process.alive]
            stepper = min(pool, key=lambda s: s.runs, default=None)
            if stepper is None or (stepper.runs and len(pool) < concurrent_cpu_runs()):
                stepper = _Stepper(StepProcess(loaded.transformer))
                pool.append(stepper)
            self._steppers[key] = pool
            stepper.runs += 1
            return stepper

    def step_processes(self, name: str) -> list[StepProcess]:
        """The live step processes of a small model."""
        with self._lock:
            return [s.process for s in self._steppers.get((get_preset(name).name, "cpu"), [])
                    if s.process.alive]


@dataclass
class _Stepper:
    process: StepProcess
    runs: int = 0  # runs taking their steps in it now


def concurrent_cpu_runs() -> int:
    """Runs the cores take at once with torch's threads per run (configure_cpu_threads)."""
    return max(1, (os.cpu_count() or 1) // torch.get_num_threads())


MODELS = ModelCache()
