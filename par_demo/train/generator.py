"""Train the any-order generator: one target-aware transformer on a mixture of schedules.

    python -m par_demo.train.generator --codes data/emoji64_codes.npz --run runs/generator \\
        --profile gpu --device cuda [--resume] [--minutes 9]

Each example draws its own schedule (raster or distant; 1x, 4x or 16x; initial tokens on or off;
now and then a random order), so one set of weights runs every ordering the app offers. The
class is replaced by the null class with probability class_dropout_p, for guidance.
"""
from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from par_demo.models.transformer import Transformer
from par_demo.orders import build_schedule
from par_demo.train.checkpoint import (TrainingState, check_same_config, load_exported,
                                       load_state, save_state)
from par_demo.train.codes import TokenGrids
from par_demo.train.config import GeneratorTraining, from_dict, profile
from par_demo.train.runtime import (Budget, MetricsLog, adamw, autocast, configure_device,
                                    learning_rate, seed_dropout, set_learning_rate, step_generator,
                                    training_arguments)
from par_demo.train.teacher_forcing import (LayoutBank, draw_rows, layout_bank, mixture_bank,
                                            teacher_forcing_batch)


def check_compatible(config: GeneratorTraining, grids: TokenGrids, bank: LayoutBank) -> None:
    a = config.model
    problems = []
    if a.vocab_size != grids.codebook_size:
        problems.append(f"vocab_size {a.vocab_size} != codebook size {grids.codebook_size}")
    if a.num_classes != grids.num_classes:
        problems.append(f"num_classes {a.num_classes} != {grids.num_classes} dataset classes")
    if a.grid != grids.grid:
        problems.append(f"grid {a.grid} != token grid {grids.grid}")
    if bank.num_fillers > a.num_fillers:
        problems.append(f"the mixture needs {bank.num_fillers} fillers, the model has "
                        f"{a.num_fillers}")
    if len(bank.schedules) > 1 and not a.target_aware:
        problems.append("several schedules need target_aware=True")
    if problems:
        raise ValueError("generator config does not fit the data: " + "; ".join(problems))


def teacher_forced_loss(model: Transformer, grids_BL, cond_B, rows_B, bank: LayoutBank,
                        device) -> torch.Tensor:
    batch = teacher_forcing_batch(grids_BL, cond_B, rows_B, bank)
    with autocast(device):
        logits = model(batch.cond, batch.tokens, batch.slots, mask_BSS=batch.mask)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                           batch.targets.reshape(-1))


@torch.no_grad()
def heldout_losses(model: Transformer, config: GeneratorTraining, grids: TokenGrids,
                   device) -> dict[str, float]:
    """Teacher-forced held-out loss under each mixture schedule (unflipped, true classes)."""
    was_training = model.training
    model.eval()
    idx = grids.indices("heldout")
    codes = torch.as_tensor(grids.codes[idx, 0], device=device).long().flatten(1)
    cond = torch.as_tensor(grids.labels[idx], device=device)
    out = {}
    for spec in config.mixture.specs:
        bank = layout_bank([build_schedule(spec)]).to(device)
        losses = [teacher_forced_loss(model, codes[i:i + 256], cond[i:i + 256],
                                      torch.zeros(len(codes[i:i + 256]), dtype=torch.long),
                                      bank, device) * len(codes[i:i + 256])
                  for i in range(0, len(codes), 256)]
        out[spec.label] = float(sum(losses) / len(codes))
    model.train(was_training)
    return out


def train_generator(config: GeneratorTraining, grids: TokenGrids, run: Path, device,
                    resume: bool = False, minutes: float | None = None,
                    chunk_steps: int | None = None, quiet: bool = False,
                    init_from: Path | None = None) -> Transformer:
    """Train until config.steps or the time budget; checkpoints in `run` (resumable). A run
    folder without a checkpoint may start from exported weights (`init_from`)."""
    device = configure_device(str(device))
    bank = mixture_bank(config.mixture)
    check_compatible(config, grids, bank)
    bank = bank.to(device)
    model = Transformer(config.model).init_weights(torch.Generator().manual_seed(config.seed))
    model = model.to(device).train()
    optimizer = adamw(model, config.optim)
    step, rewarm_from = 0, None
    saved = load_state(run) if resume else None
    if saved is None and init_from is not None:
        saved = load_exported(init_from)
        rewarm_from = saved.step
    if saved is not None:
        check_same_config(saved.config, asdict(config))
        model.load_state_dict(saved.model)
        if saved.optimizer:
            optimizer.load_state_dict(saved.optimizer)
        step = saved.step
        if "rewarm_from" in saved.extra:
            rewarm_from = int(saved.extra["rewarm_from"])

    log, budget = MetricsLog(run, quiet), Budget(minutes)
    last_step = config.steps if chunk_steps is None else min(config.steps, step + chunk_steps)
    idx = grids.indices("train")
    codes = torch.as_tensor(grids.codes[idx], device=device).long().flatten(2)  # [N, 2, L]
    labels = torch.as_tensor(grids.labels[idx], device=device)
    flippable = torch.tensor([name not in config.unflipped_classes for name in grids.class_names],
                             device=device)
    null_class = config.model.num_classes

    def checkpoint():
        extra = {} if rewarm_from is None else {"rewarm_from": torch.tensor(rewarm_from)}
        save_state(run, TrainingState(step, asdict(config), model.state_dict(),
                                      optimizer.state_dict(), extra))

    clock, running = time.perf_counter(), []
    while step < last_step and not budget.spent():
        g = step_generator(config.seed, step)
        seed_dropout(config.seed, step)
        set_learning_rate(optimizer, learning_rate(config.optim, step, config.steps, rewarm_from))
        pick = torch.randint(len(codes), (config.batch_size,), generator=g).to(device)
        flip = (torch.rand(config.batch_size, generator=g) < config.flip_p).to(device)
        drop = (torch.rand(config.batch_size, generator=g) < config.class_dropout_p).to(device)
        rows = draw_rows(bank, config.batch_size, config.mixture.random_share, g)
        cond = torch.where(drop, null_class, labels[pick])
        flip = (flip & flippable[labels[pick]]).long()
        loss = teacher_forced_loss(model, codes[pick, flip], cond, rows, bank, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        optimizer.step()
        step += 1
        running.append(loss.detach())

        if step % config.log_every == 0 or step == config.steps:
            now = time.perf_counter()
            log.write(step=step, loss=float(torch.stack(running).mean()),
                      lr=optimizer.param_groups[0]["lr"], seconds=now - clock)
            clock, running = now, []
        if step % config.save_every == 0 or step == config.steps:
            checkpoint()
            log.write(step=step, **{f"heldout {k}": v for k, v in
                                    heldout_losses(model, config, grids, device).items()})
    checkpoint()
    return model.eval()


def load_trained_generator(run: Path, device="cpu") -> Transformer:
    state = load_state(run)
    if state is None:
        raise FileNotFoundError(f"{run} holds no generator checkpoint")
    model = Transformer(from_dict(GeneratorTraining, state.config).model)
    model.load_state_dict(state.model)
    return model.to(device).eval()


def main(argv: list[str] | None = None) -> None:
    a = training_arguments(__doc__, "--codes", "data/emoji64_codes.npz", "runs/generator", argv,
                           init_from=True)
    config = profile(a.profile).generator
    if a.steps is not None:
        config = replace(config, steps=a.steps)
    train_generator(config, TokenGrids.load(a.data), a.run, a.device, a.resume, a.minutes,
                    a.chunk_steps, init_from=a.init_from)

if __name__ == "__main__":
    main()
