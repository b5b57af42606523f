"""What a released model's image costs on this CPU and the weight format it runs in: first from
its matrix products measured here (models/weight_format.py, at the shapes and rows of the
model's own schedule), then from the model time of its last complete run here, remembered for
the rest of the process."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

from par_demo.models.weight_format import WeightFormat, fastest_cpu_format
from par_demo.presets import ModelPreset


@dataclass(frozen=True)
class CpuCost:
    format: WeightFormat  # the weight format the model runs in here
    image_seconds: float  # model time of one image
    source: str  # how the time was found, as the page says it

    @property
    def note(self) -> str:
        return f"runs on this CPU, about {self.image_seconds:.0f} s per image ({self.source})"


def step_rows(preset: ModelPreset) -> list[int]:
    """Rows each step of the preset's own schedule multiplies: a row per token, twice with
    guidance (the conditional and unconditional passes share the step)."""
    schedule = preset.check(preset.runs)
    guided = 2 if preset.sampling.cfg_scale > 1.0 else 1
    return [guided * size for size in schedule.sizes]


class CpuCosts:
    """Per model: the weight format and image time, measured once, then updated by runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._costs: dict[str, CpuCost] = {}

    def cost(self, preset: ModelPreset) -> CpuCost:
        with self._lock:
            if preset.name not in self._costs:
                fmt, seconds = fastest_cpu_format(preset.args, step_rows(preset))
                self._costs[preset.name] = CpuCost(
                    fmt, seconds, f"{fmt.name} matrix products measured here; "
                                  "attention and sampling come on top")
            return self._costs[preset.name]

    def known(self, preset: ModelPreset) -> CpuCost | None:
        """The cost found so far, without measuring."""
        with self._lock:
            return self._costs.get(preset.name)

    def remember_run(self, preset: ModelPreset, model_seconds: float) -> None:
        """A complete run's model time replaces the estimate of the next."""
        with self._lock:
            fmt = self._costs[preset.name].format if preset.name in self._costs else None
            if fmt is not None:
                self._costs[preset.name] = CpuCost(fmt, model_seconds,
                                                   "your last run on this machine")


CPU_COSTS = CpuCosts()


def run_format(preset: ModelPreset, device: str) -> WeightFormat:
    """The weight format of a run: bf16 for released models on a GPU that has it (as the
    official sampling code), the format measured fastest on a CPU; fp32 for the small models."""
    if not preset.large:
        return WeightFormat(torch.float32)
    if torch.device(device).type == "cuda":
        return WeightFormat(torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32)
    return CPU_COSTS.cost(preset).format
