"""The parts of the training loop (loop.py): optimizer and learning-rate schedule, per-step
seeding, the time budget of a chunk, bf16 autocast on CUDA, and a JSON-lines log."""
from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.05  # on matrices only; norms, biases and embeddings are not decayed
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # cosine decays to lr * this at the last step
    grad_clip: float = 1.0  # 0 turns clipping off
    # (parameter-name part, learning-rate multiplier): a class embedding of 1714 rows sees each
    # row once in about 50 steps, so it learns faster at a larger rate
    lr_scales: tuple[tuple[str, float], ...] = ()


def adamw(model: torch.nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        is_matrix = p.ndim >= 2 and "embedding" not in name
        scale = next((s for part, s in config.lr_scales if part in name), 1.0)
        groups.setdefault((config.weight_decay if is_matrix else 0.0, scale), []).append(p)
    order = sorted(groups, key=lambda key: (key[0] == 0.0, key[1]))  # decayed, then the rest
    return torch.optim.AdamW([{"params": groups[key], "weight_decay": key[0], "lr_scale": key[1]}
                              for key in order],
                             lr=config.lr, betas=config.betas)


def learning_rate(config: OptimConfig, step: int, total_steps: int,
                  rewarm_from: int | None = None) -> float:
    """Linear warmup, then cosine down to min_lr_ratio * lr at total_steps. A run continued from
    exported weights has fresh optimizer moments: it warms up again from `rewarm_from`."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps))
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    lr = config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)
    if rewarm_from is not None:
        lr *= min(1.0, (step - rewarm_from + 1) / config.warmup_steps)
    return lr


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def step_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The randomness of one step, a function of (seed, step) alone, so that a resumed run draws
    exactly what an uninterrupted one would."""
    g = torch.Generator(device)
    g.manual_seed(seed * 1_000_003 + step)
    return g


def seed_dropout(seed: int, step: int) -> None:
    """Dropout draws from the global generator; reseed it per step for the same reason."""
    torch.manual_seed(seed * 1_000_003 + step + 7)


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (Linux's flags; False where unreadable).
    Without them bf16 is emulated: a generator step took 2.4-2.9x as long as in fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def autocast(device: torch.device, cpu_bf16: bool = False) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, and on the CPU where the stage asks for it and the CPU has bf16
    matrix instructions; full precision elsewhere."""
    if device.type == "cuda" or (device.type == "cpu" and cpu_bf16 and cpu_has_bf16()):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def configure_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


class Budget:
    """A chunk's wall-clock allowance, so a run fits a time-limited command and resumes later."""

    def __init__(self, minutes: float | None):
        self.deadline = None if minutes is None else time.monotonic() + 60 * minutes

    def spent(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


class MetricsLog:
    """Appends one JSON object per line to <run>/log.jsonl and echoes it."""

    def __init__(self, run: Path, quiet: bool = False):
        run.mkdir(parents=True, exist_ok=True)
        self.path = run / "log.jsonl"
        self.quiet = quiet

    def write(self, **record) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if not self.quiet:
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in record.items()), flush=True)

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]
