"""The evaluation classifier: a small CNN trained on the real training split.

    python -m par_demo.train.classifier --data data/emoji64.npz --run runs/classifier \\
        --profile gpu --device cuda [--resume]

Its penultimate features are what the Frechet distance compares; its predictions say whether a
generated image shows the requested class. Reports held-out accuracy.
"""
from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from par_demo.train.checkpoint import TrainingState, check_same_config, load_state, save_state
from par_demo.train.config import ClassifierTraining, from_dict, profile
from par_demo.train.emoji_data import EmojiDataset
from par_demo.train.runtime import (Budget, MetricsLog, adamw, configure_device, learning_rate,
                                    set_learning_rate, step_generator, training_arguments)
from par_demo.train.tokenizer import random_flip, to_model_range


def conv_stage(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convolutions, then halve the resolution."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.MaxPool2d(2))


class EmojiClassifier(nn.Module):
    def __init__(self, num_classes: int, width: int, feature_dim: int):
        super().__init__()
        widths = [width, 2 * width, 4 * width, 4 * width]  # 64 -> 32 -> 16 -> 8 -> 4 px
        self.stages = nn.Sequential(*(conv_stage(c_in, c_out) for c_in, c_out
                                      in zip([3] + widths[:-1], widths)))
        self.project = nn.Linear(widths[-1], feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x_B3HW: torch.Tensor) -> torch.Tensor:
        """[B, feature_dim] features of images in [-1, 1]."""
        return F.relu(self.project(self.stages(x_B3HW).mean(dim=(2, 3))))

    def forward(self, x_B3HW: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x_B3HW))


def random_shift(x_B3HW: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to `pixels` (white fill), so position is not a class cue."""
    B, _, H, W = x_B3HW.shape
    padded = F.pad(x_B3HW, (pixels,) * 4, value=1.0)
    dy, dx = (torch.randint(2 * pixels + 1, (2, B), generator=generator)).tolist()
    return torch.stack([padded[b, :, dy[b]:dy[b] + H, dx[b]:dx[b] + W] for b in range(B)])


@torch.no_grad()
def predict(model: EmojiClassifier, images_NHW3: np.ndarray, batch: int = 256):
    """(features [N, D], predicted classes [N]) of uint8 images."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    feats, preds = [], []
    for i in range(0, len(images_NHW3), batch):
        f = model.features(to_model_range(images_NHW3[i:i + batch], device))
        feats.append(f.cpu())
        preds.append(model.head(f).argmax(-1).cpu())
    model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(preds).numpy()


def heldout_accuracy(model: EmojiClassifier, data: EmojiDataset) -> float:
    idx = data.indices("heldout")
    _, pred = predict(model, data.images[idx])
    return float((pred == data.labels[idx]).mean())


def train_classifier(config: ClassifierTraining, data: EmojiDataset, run: Path, device,
                     resume: bool = False, minutes: float | None = None,
                     chunk_steps: int | None = None,
                     quiet: bool = False) -> EmojiClassifier:
    device = configure_device(str(device))
    torch.manual_seed(config.seed)  # the module initialisers draw from the global generator
    model = EmojiClassifier(data.num_classes, config.width, config.feature_dim).to(device).train()
    optimizer = adamw(model, config.optim)
    step = 0
    saved = load_state(run) if resume else None
    if saved is not None:
        check_same_config(saved.config, asdict(config))
        model.load_state_dict(saved.model)
        optimizer.load_state_dict(saved.optimizer)
        step = saved.step

    log, budget = MetricsLog(run, quiet), Budget(minutes)
    last_step = config.steps if chunk_steps is None else min(config.steps, step + chunk_steps)
    idx = data.indices("train")
    images = torch.as_tensor(data.images[idx], device=device)
    labels = torch.as_tensor(data.labels[idx], device=device)

    def checkpoint():
        save_state(run, TrainingState(step, asdict(config), model.state_dict(),
                                      optimizer.state_dict(), {}))

    clock = time.perf_counter()
    while step < last_step and not budget.spent():
        g = step_generator(config.seed, step)
        set_learning_rate(optimizer, learning_rate(config.optim, step, config.steps))
        pick = torch.randint(len(images), (config.batch_size,), generator=g).to(device)
        x = random_shift(random_flip(to_model_range(images[pick], device), 0.5, g), 4, g)
        loss = F.cross_entropy(model(x), labels[pick], label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % config.log_every == 0 or step == config.steps:
            now = time.perf_counter()
            log.write(step=step, loss=loss.item(), seconds=now - clock)
            clock = now
        if step % config.save_every == 0:
            checkpoint()
            model.eval()
            log.write(step=step, heldout_accuracy=heldout_accuracy(model, data))
            model.train()
    checkpoint()
    model.eval()
    log.write(step=step, heldout_accuracy=heldout_accuracy(model, data))
    return model


def load_trained_classifier(run: Path, num_classes: int, device="cpu") -> EmojiClassifier:
    state = load_state(run)
    if state is None:
        raise FileNotFoundError(f"{run} holds no classifier checkpoint")
    config = from_dict(ClassifierTraining, state.config)
    model = EmojiClassifier(num_classes, config.width, config.feature_dim)
    model.load_state_dict(state.model)
    return model.to(device).eval()


def main(argv: list[str] | None = None) -> None:
    a = training_arguments(__doc__, "--data", "data/emoji64.npz", "runs/classifier", argv)
    config = profile(a.profile).classifier
    if a.steps is not None:
        config = replace(config, steps=a.steps)
    train_classifier(config, EmojiDataset.load(a.data), a.run, a.device, a.resume, a.minutes,
                     a.chunk_steps)

if __name__ == "__main__":
    main()
