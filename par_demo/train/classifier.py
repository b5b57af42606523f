"""The evaluation classifier: a small CNN trained on the real training split.

    python -m par_demo.train.classifier --data data/emoji64.npz --run runs/classifier \\
        --profile gpu --device cuda [--resume]

Its penultimate features are what the Frechet distance compares; its predictions say whether a
generated image shows the requested class. Reports held-out accuracy.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from par_demo.train.config import ClassifierTraining
from par_demo.train.emoji_data import EmojiDataset
from par_demo.train.loop import Stage, command_line, load_trained, train
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


def random_zoom(x_B3HW: torch.Tensor, max_change: float, generator: torch.Generator
                ) -> torch.Tensor:
    """Scale each image about its centre by a factor in [1 - max_change, 1 + max_change]
    (white fill): emoji sets draw the same thing at different sizes."""
    B = x_B3HW.shape[0]
    factor = 1 + max_change * (2 * torch.rand(B, generator=generator) - 1)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / factor
    grid = F.affine_grid(theta.to(x_B3HW.device), list(x_B3HW.shape), align_corners=False)
    # sampling x - 1 makes the zero padding white once 1 is added back
    return F.grid_sample(x_B3HW - 1, grid, align_corners=False) + 1


@torch.no_grad()
def predict(model: EmojiClassifier, images_NHW3: np.ndarray, batch: int = 256):
    """(features [N, D], predicted classes [N]) of uint8 images; features are averaged over
    each image and its mirror image (training flips, so both are in distribution)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    feats, preds = [], []
    for i in range(0, len(images_NHW3), batch):
        x = to_model_range(images_NHW3[i:i + batch], device)
        f = (model.features(x) + model.features(x.flip(-1))) / 2
        feats.append(f.cpu())
        preds.append(model.head(f).argmax(-1).cpu())
    model.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(preds).numpy()


def heldout_accuracy(model: EmojiClassifier, data: EmojiDataset) -> float:
    idx = data.indices("heldout")
    _, pred = predict(model, data.images[idx])
    return float((pred == data.labels[idx]).mean())


class ClassifierStage(Stage):
    """Cross-entropy on flipped, zoomed and shifted training images."""

    def __init__(self, config: ClassifierTraining, data: EmojiDataset, device):
        self.config, self.data, self.device = config, data, device
        self.model = EmojiClassifier(data.num_classes, config.width, config.feature_dim)
        self.eval_every = config.save_every
        idx = data.indices("train")
        self.images = torch.as_tensor(data.images[idx], device=device)
        self.labels = torch.as_tensor(data.labels[idx], device=device)

    def loss(self, g: torch.Generator) -> dict[str, torch.Tensor]:
        c = self.config
        pick = torch.randint(len(self.images), (c.batch_size,), generator=g).to(self.device)
        x = to_model_range(self.images[pick], self.device)
        x = random_shift(random_zoom(random_flip(x, 0.5, g), c.zoom, g), 4, g)
        return {"loss": F.cross_entropy(self.model(x), self.labels[pick],
                                        label_smoothing=c.label_smoothing)}

    def evaluate(self) -> dict[str, float]:
        return {"heldout_accuracy": heldout_accuracy(self.model, self.data)}


def train_classifier(config: ClassifierTraining, data: EmojiDataset, run: Path, device,
                     resume: bool = False, minutes: float | None = None,
                     chunk_steps: int | None = None,
                     quiet: bool = False) -> EmojiClassifier:
    """Train until config.steps or the time budget; checkpoints in `run` (resumable)."""
    return train(config, partial(ClassifierStage, config, data), run, device, resume, minutes,
                 chunk_steps, quiet)


def load_trained_classifier(run: Path, num_classes: int, device="cpu") -> EmojiClassifier:
    return load_trained(run, "classifier", lambda config: EmojiClassifier(
        num_classes, config.width, config.feature_dim), device)


def main(argv: list[str] | None = None) -> None:
    a, config = command_line(__doc__, "classifier", "--data", "data/emoji64.npz", argv)
    train_classifier(config, EmojiDataset.load(a.data), a.run, a.device, a.resume, a.minutes,
                     a.chunk_steps)

if __name__ == "__main__":
    main()
