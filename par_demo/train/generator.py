"""Train the any-order generator: one target-aware transformer on a mixture of schedules.

    python -m par_demo.train.generator --codes data/emoji64_codes.npz --run runs/generator \\
        --profile gpu --device cuda [--resume] [--minutes 9]

Each example draws its own schedule (raster or distant; 1x, 4x or 16x; initial tokens on or off;
now and then a random order), so one set of weights runs every ordering the app offers. The
class is replaced by the null class with probability class_dropout_p, for guidance.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from par_demo.models.transformer import ModelArgs, Transformer
from par_demo.orders import build_schedule
from par_demo.train.codes import TokenGrids
from par_demo.train.config import GeneratorTraining
from par_demo.train.loop import Stage, command_line, load_trained, train
from par_demo.train.runtime import autocast
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
                        device, cpu_bf16: bool = False) -> torch.Tensor:
    batch = teacher_forcing_batch(grids_BL, cond_B, rows_B, bank)
    with autocast(device, cpu_bf16):
        logits = model(batch.cond, batch.tokens, batch.slots, mask_BSS=batch.mask)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                           batch.targets.reshape(-1))


def training_model_args(config: GeneratorTraining) -> ModelArgs:
    """The model as trained: the config's dropout in place of the model's own, if it names one."""
    p = config.dropout
    if p is None:
        return config.model
    return replace(config.model, token_dropout_p=p, resid_dropout_p=p, ffn_dropout_p=p)


@torch.no_grad()
def split_losses(model: Transformer, config: GeneratorTraining, grids: TokenGrids,
                   device, split: str = "heldout", limit: int | None = None) -> dict[str, float]:
    """Teacher-forced loss under each mixture schedule (unflipped, true classes) of a split's
    first `limit` pictures: the held-out ones, or the training ones for how well they are fit."""
    was_training = model.training
    model.eval()
    idx = grids.indices(split)[:limit]
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


FIT_PICTURES = 256  # training pictures whose conditional loss shows how well drawings are learnt


class GeneratorStage(Stage):
    """Teacher-forced loss on a batch whose every example draws its schedule, mirror and class
    dropout."""

    def __init__(self, config: GeneratorTraining, grids: TokenGrids, device):
        bank = mixture_bank(config.mixture)
        check_compatible(config, grids, bank)
        self.config, self.grids, self.device, self.bank = config, grids, device, bank.to(device)
        self.model = Transformer(training_model_args(config)).init_weights(
            torch.Generator().manual_seed(config.seed))
        self.eval_every = config.save_every
        idx = grids.indices("train")
        self.codes = torch.as_tensor(grids.codes[idx], device=device).long().flatten(2)  # [N,2,L]
        self.labels = torch.as_tensor(grids.labels[idx], device=device)
        self.flippable = torch.tensor([group not in config.unflipped_classes
                                       for group in grids.groups], device=device)

    def loss(self, g: torch.Generator) -> dict[str, torch.Tensor]:
        c, device = self.config, self.device
        pick = torch.randint(len(self.codes), (c.batch_size,), generator=g).to(device)
        flip = (torch.rand(c.batch_size, generator=g) < c.flip_p).to(device)
        drop = (torch.rand(c.batch_size, generator=g) < c.class_dropout_p).to(device)
        rows = draw_rows(self.bank, c.batch_size, c.mixture.random_share, g)
        cond = torch.where(drop, c.model.num_classes, self.labels[pick])  # the null class
        flip = (flip & self.flippable[self.labels[pick]]).long()
        return {"loss": teacher_forced_loss(self.model, self.codes[pick, flip], cond, rows,
                                            self.bank, device, c.cpu_bf16)}

    def evaluate(self) -> dict[str, float]:
        fit = split_losses(self.model, self.config, self.grids, self.device, "train",
                             FIT_PICTURES)
        return ({f"heldout {k}": v for k, v in
                 split_losses(self.model, self.config, self.grids, self.device).items()}
                | {f"train {k}": v for k, v in fit.items()})


def train_generator(config: GeneratorTraining, grids: TokenGrids, run: Path, device,
                    resume: bool = False, minutes: float | None = None,
                    chunk_steps: int | None = None, quiet: bool = False,
                    init_from: Path | None = None,
                    start_from: Path | None = None) -> Transformer:
    """Train until config.steps or the time budget; checkpoints in `run` (resumable). A run
    folder without a checkpoint may continue exported weights (`init_from`) or start a new phase
    from them (`start_from`)."""
    return train(config, partial(GeneratorStage, config, grids), run, device, resume, minutes,
                 chunk_steps, quiet, init_from, start_from)


def load_trained_generator(run: Path, device="cpu") -> Transformer:
    return load_trained(run, "generator", lambda config: Transformer(config.model), device)


def main(argv: list[str] | None = None) -> None:
    a, config = command_line(__doc__, "generator", "--codes", "data/emoji64_codes.npz", argv,
                             init_from=True)
    train_generator(config, TokenGrids.load(a.data), a.run, a.device, a.resume, a.minutes,
                    a.chunk_steps, init_from=a.init_from, start_from=a.start_from)

if __name__ == "__main__":
    main()
