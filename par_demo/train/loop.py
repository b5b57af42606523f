"""The training loop every stage runs, and the command line every training script shares.

A trainer supplies a `Stage`: its model, the loss of one step, its own checkpoint state and its
evaluation. The loop does the rest the same way for every stage: building or resuming the state,
the randomness of each step, the learning rate, backward, gradient clipping, the optimizer step,
the log, checkpoints, evaluation, and stopping at the time budget or the chunk's end.
"""
from __future__ import annotations

import argparse
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, get_type_hints

import torch

from par_demo.train.checkpoint import (TrainingState, check_same_config, load_exported,
                                       load_state, save_state)
from par_demo.train.config import (ClassifierTraining, GeneratorTraining, Profile,
                                   TokenizerTraining, from_dict, profile)
from par_demo.train.runtime import (Budget, MetricsLog, adamw, configure_device, learning_rate,
                                    seed_dropout, set_learning_rate, step_generator)

TrainingConfig = TokenizerTraining | GeneratorTraining | ClassifierTraining


class Stage(ABC):
    """What one trainer supplies to the loop."""

    model: torch.nn.Module  # built by the stage; the loop puts it on the device
    eval_every: int  # evaluate every this many steps and at the last step

    @abstractmethod
    def loss(self, g: torch.Generator) -> dict[str, torch.Tensor]:
        """The metrics of one step on a batch drawn from `g`; "loss" is the one minimised."""

    def after_step(self, step: int, g: torch.Generator) -> dict[str, float]:
        """Work after the optimizer's step number `step` (from 1), and what to log of it."""
        return {}

    @abstractmethod
    def evaluate(self) -> dict[str, float]:
        """What to log of the model now (on held-out data)."""

    def extra_state(self) -> dict[str, torch.Tensor]:
        """Checkpointed along with the model and optimizer."""
        return {}

    def load_extra_state(self, extra: dict[str, torch.Tensor]) -> None:
        pass


def train(config: TrainingConfig, build: Callable[[torch.device], Stage], run: Path, device,
          resume: bool = False, minutes: float | None = None, chunk_steps: int | None = None,
          quiet: bool = False, init_from: Path | None = None,
          start_from: Path | None = None) -> torch.nn.Module:
    """Train `build(device)` until config.steps, the time budget or the chunk's end; checkpoints
    in `run` (resumable). A run folder without a checkpoint may continue exported weights under
    their own config (`init_from`), or start a new phase from their weights alone at step 0
    (`start_from`)."""
    if init_from is not None and start_from is not None:
        raise ValueError("give --init-from (continue an exported run) or --start-from (a new "
                         "phase from its weights), not both")
    device = configure_device(str(device))
    torch.manual_seed(config.seed)  # the module initialisers draw from the global generator
    stage = build(device)
    model = stage.model.to(device).train()
    optimizer = adamw(model, config.optim)
    step, rewarm_from = resume_state(config, stage, optimizer, run, resume, init_from, start_from)

    def checkpoint():
        extra = stage.extra_state()
        if rewarm_from is not None:
            extra["rewarm_from"] = torch.tensor(rewarm_from)
        save_state(run, TrainingState(step, asdict(config), model.state_dict(),
                                      optimizer.state_dict(), extra))

    log, budget, window = MetricsLog(run, quiet), Budget(minutes), Window()
    last_step = config.steps if chunk_steps is None else min(config.steps, step + chunk_steps)
    saved_at = None
    while step < last_step and not budget.spent():
        g = step_generator(config.seed, step)
        seed_dropout(config.seed, step)
        set_learning_rate(optimizer, learning_rate(config.optim, step, config.steps, rewarm_from))
        metrics = stage.loss(g)
        optimizer.zero_grad(set_to_none=True)
        metrics["loss"].backward()
        if config.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        optimizer.step()
        step += 1
        window.add(metrics | stage.after_step(step, g))

        at_end = step == config.steps
        if step % config.log_every == 0 or at_end:
            log.write(step=step, **window.means(), lr=optimizer.param_groups[0]["lr"],
                      seconds=window.reset())
        if step % config.save_every == 0 or at_end:
            checkpoint()
            saved_at = step
        if step % stage.eval_every == 0 or at_end:
            log.write(step=step, **stage.evaluate())
    if saved_at != step:
        checkpoint()
    return model.eval()


class Window:
    """The metrics of the steps since the last log line, kept as tensors so that the device is
    read once a line, not once a step. A metric is averaged over the steps that reported it."""

    def __init__(self):
        self.values: dict[str, list[torch.Tensor]] = {}
        self.clock = time.perf_counter()

    def add(self, metrics: dict[str, torch.Tensor | float]) -> None:
        for name, value in metrics.items():
            self.values.setdefault(name, []).append(torch.as_tensor(value).detach().float())

    def means(self) -> dict[str, float]:
        return {name: float(torch.stack(v).mean()) for name, v in self.values.items()}

    def reset(self) -> float:
        """Empty the window; the seconds it lasted."""
        now, start = time.perf_counter(), self.clock
        self.values, self.clock = {}, now
        return now - start


def resume_state(config: TrainingConfig, stage: Stage, optimizer: torch.optim.Optimizer,
                 run: Path, resume: bool, init_from: Path | None,
                 start_from: Path | None = None) -> tuple[int, int | None]:
    """Load the run's checkpoint (or exported weights) into the stage and optimizer: the step
    reached, and the step a re-warm-up started at (exported weights have no optimizer moments)."""
    saved = load_state(run) if resume else None
    if saved is None and start_from is not None:
        stage.model.load_state_dict(load_exported(start_from).model)  # strict: same architecture
        return 0, None
    rewarm_from = None
    if saved is None and init_from is not None:
        saved = load_exported(init_from)
        rewarm_from = saved.step
    if saved is None:
        return 0, None
    # through the dataclass, so a field added since the save compares as its default
    check_same_config(asdict(from_dict(type(config), saved.config)), asdict(config))
    stage.model.load_state_dict(saved.model)
    if saved.optimizer:
        optimizer.load_state_dict(saved.optimizer)
    if "rewarm_from" in saved.extra:
        rewarm_from = int(saved.extra["rewarm_from"])
    stage.load_extra_state(saved.extra)
    return saved.step, rewarm_from


def load_trained(run: Path, name: str, build: Callable[[TrainingConfig], torch.nn.Module],
                 device) -> torch.nn.Module:
    """The model of a run folder's checkpoint of stage `name` (a Profile field), built by
    `build(config)` and put in eval mode on `device`."""
    state = load_state(run)
    if state is None:
        raise FileNotFoundError(f"{run} holds no {name} checkpoint")
    model = build(from_dict(get_type_hints(Profile)[name], state.config))
    model.load_state_dict(state.model)
    return model.to(device).eval()


def command_line(doc: str, name: str, data_flag: str, data_default: str,
                 argv: list[str] | None,
                 init_from: bool = False) -> tuple[argparse.Namespace, TrainingConfig]:
    """The arguments every training script shares (data, run folder, profile, device, resume and
    the ways to stop early with a checkpoint) and the config of stage `name` they select."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(data_flag, dest="data", type=Path, default=Path(data_default))
    p.add_argument("--run", type=Path, default=Path(f"runs/{name}"))
    p.add_argument("--profile", default="gpu", help="toy | cpu | gpu | cpu-gen2")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--resume", action="store_true", help="continue from <run>/checkpoint.pt")
    p.add_argument("--steps", type=int, help="override the profile's total steps")
    p.add_argument("--save-every", type=int,
                   help="override how often a checkpoint is saved (and a generator evaluated)")
    p.add_argument("--lr", type=float, help="override the profile's peak learning rate")
    p.add_argument("--minutes", type=float, help="stop (with a checkpoint) after this long")
    p.add_argument("--chunk-steps", type=int, help="stop (with a checkpoint) after this many steps")
    if init_from:
        p.add_argument("--init-from", type=Path,
                       help="start an empty run folder from exported weights (e.g. assets/...): "
                            "their step and config, fresh optimizer moments, a short re-warm-up")
        p.add_argument("--start-from", type=Path,
                       help="start an empty run folder from exported weights alone: a new phase "
                            "under this profile's config, from step 0")
    a = p.parse_args(argv)
    config = getattr(profile(a.profile), name)
    overrides = {k: v for k, v in (("steps", a.steps), ("save_every", a.save_every))
                 if v is not None}
    if a.lr is not None:
        overrides["optim"] = replace(config.optim, lr=a.lr)
    return a, replace(config, **overrides)
