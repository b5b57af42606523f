"""The settings of one run's sampling. A leaf module: presets carry their defaults without
importing the sampler."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingConfig:
    cfg_scale: float = 1.0  # classifier-free guidance; <= 1 skips the unconditional pass
    temperature: float = 1.0
    top_k: int = 0  # keep the k most likely tokens; 0 keeps all
    top_p: float = 1.0  # keep the smallest set with this much probability; 1 keeps all
    greedy: bool = False  # argmax instead of sampling (reference parity, debugging)
    seed: int = 0

    def validate(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top-k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.cfg_scale < 0:
            raise ValueError(f"guidance scale must be >= 0, got {self.cfg_scale}")
