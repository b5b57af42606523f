"""Does a sample show the emoji that was asked for? The per-emoji evaluation (issue 32).

    python -m par_demo.train.recognition --generator-weights assets/emoji_generator.safetensors \\
        --data data/emoji64_extra.npz --classifier-run runs/classifier --out runs/recognition \\
        [--emoji 256] [--per-emoji 2] [--orderings "distant 4x, with initial tokens" ...]

The same emoji (a seeded sample of the training emoji) and the same seeds for every generator and
ordering. A generator with a class per emoji is asked for the emoji; a 32-class generator for its
group, which is all it can be asked. For each sample:

* recognisable: its nearest training picture is a drawing of the asked emoji. Two feature spaces:
  the judge's penultimate layer (what the Frechet distance uses) and plain pixels at 32 px. Emoji
  are drawn centred on white at one scale, so the pixel neighbour is the literal "nearest
  drawing"; the judge's features add tolerance to shifts and strokes but were trained to tell 32
  groups apart, not emoji inside a group, so each undercounts in its own way.
* group accuracy: the judge names the asked emoji's 32-way group.
* Frechet distance of the judge's features to those of every training picture (FID's reference
  is the training set too).

Writes results.json, table.md and grid_<ordering>.png: an 8 x 8 grid of one sample for each of
64 emoji (the first 64 of the sample) with the answer key in grid_key.json, for a person to name.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from par_demo.batch_sampling import sample_all
from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.orders import build_schedule
from par_demo.presets import EMBEDDED
from par_demo.sampler import SamplingConfig
from par_demo.train.classifier import EmojiClassifier, load_trained_classifier, predict
from par_demo.train.config import EVAL_SCHEDULES
from par_demo.train.emoji_data import EmojiDataset
from par_demo.train.evaluate import exported_generator, exported_tokenizer, slug
from par_demo.train.metrics import frechet_distance
from par_demo.train.per_emoji import TABLE

PIXEL_SIDE = 32  # the pixel neighbour compares 32 px thumbnails: strokes, not anti-aliasing


@dataclass(frozen=True)
class RecognitionResult:
    label: str
    steps: int
    samples: int
    recognisable_features: float  # nearest training picture (judge features) is the emoji
    recognisable_pixels: float  # nearest training picture (32 px pixels) is the emoji
    group_accuracy: float  # the judge names the emoji's 32-way group
    frechet_train: float  # judge features, to every training picture


@dataclass
class TrainingPictures:
    """The training split's pictures as the neighbour search sees them."""

    emoji: np.ndarray  # [N] code points
    features: np.ndarray  # [N, D] judge features, unit length
    thumbnails: np.ndarray  # [N, P] 32 px pixels in [0, 1]
    raw_features: np.ndarray  # [N, D] as the judge gives them (the Frechet reference)

    @classmethod
    def of(cls, data: EmojiDataset, judge: EmojiClassifier) -> "TrainingPictures":
        idx = data.indices("train")
        features, _ = predict(judge, data.images[idx])
        return cls(data.group[idx], unit(features), thumbnails(data.images[idx]), features)

    def nearest_emoji(self, features: np.ndarray, images: np.ndarray) -> tuple[np.ndarray, ...]:
        """The emoji of each sample's nearest training picture, by features and by pixels."""
        by_features = (unit(features) @ self.features.T).argmax(1)
        thumbs = thumbnails(images)
        distances = ((thumbs ** 2).sum(1)[:, None] - 2 * thumbs @ self.thumbnails.T
                     + (self.thumbnails ** 2).sum(1)[None])
        return self.emoji[by_features], self.emoji[distances.argmin(1)]


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


def thumbnails(images_NHW3: np.ndarray) -> np.ndarray:
    x = torch.as_tensor(images_NHW3).permute(0, 3, 1, 2).float() / 255
    small = torch.nn.functional.avg_pool2d(x, images_NHW3.shape[1] // PIXEL_SIDE)
    return small.flatten(1).numpy()


def asked_emoji(table: list[dict], count: int, seed: int) -> list[int]:
    """A seeded sample of class-table rows, spread over the table."""
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(len(table), size=min(count, len(table)), replace=False).tolist())


def model_classes(generator: Transformer, table: list[dict], rows: np.ndarray) -> np.ndarray:
    """What the generator is asked for: the emoji itself, or its group for a 32-class model."""
    if generator.args.num_classes == len(table):
        return rows
    return np.array([table[r]["group"] for r in rows])


def evaluate(generator: Transformer, tokenizer: VQModel, judge: EmojiClassifier,
             reference: TrainingPictures, table: list[dict], rows: np.ndarray, schedules,
             sampling: SamplingConfig, batch: int):
    """(results, samples per ordering label) for the table rows `rows` (one per sample)."""
    emoji = np.array([table[r]["emoji"] for r in rows])
    groups = np.array([table[r]["group"] for r in rows])
    asked = model_classes(generator, table, rows)
    results, samples = [], {}
    for spec in schedules:
        schedule = build_schedule(spec)
        images = sample_all(generator, tokenizer, schedule, asked, sampling, batch)
        features, pred = predict(judge, images)
        by_features, by_pixels = reference.nearest_emoji(features, images)
        results.append(RecognitionResult(
            label=spec.label, steps=schedule.num_steps, samples=len(rows),
            recognisable_features=float((by_features == emoji).mean()),
            recognisable_pixels=float((by_pixels == emoji).mean()),
            group_accuracy=float((pred == groups).mean()),
            frechet_train=frechet_distance(features, reference.raw_features)))
        samples[spec.label] = images
    return results, samples


def format_table(results: list[RecognitionResult], sampling: SamplingConfig) -> str:
    lines = ["| ordering | steps | recognisable (judge features) | recognisable (pixels) "
             "| 32-group accuracy | Frechet distance to training |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.label} | {r.steps} | {r.recognisable_features:.1%} "
              f"| {r.recognisable_pixels:.1%} | {r.group_accuracy:.1%} | {r.frechet_train:.2f} |"
              for r in results]
    cut = "".join([f", top-k {sampling.top_k}" if sampling.top_k else "",
                   f", top-p {sampling.top_p}" if sampling.top_p < 1 else ""])
    lines.append(f"\n{results[0].samples} samples per ordering; guidance {sampling.cfg_scale}, "
                 f"temperature {sampling.temperature}{cut}.")
    return "\n".join(lines)


def naming_grid(images: np.ndarray, per_emoji: int, side: int = 8) -> np.ndarray:
    """One sample of each of the first side*side emoji, row by row."""
    picks = images[::per_emoji][:side * side]
    h, w = picks.shape[1:3]
    grid = np.full((side * h, side * w, 3), 255, np.uint8)
    for k, image in enumerate(picks):
        grid[(k // side) * h:(k // side + 1) * h, (k % side) * w:(k % side + 1) * w] = image
    return grid


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("data/emoji64_extra.npz"))
    p.add_argument("--tokenizer-weights", type=Path,
                   default=Path("assets/emoji_tokenizer.safetensors"))
    p.add_argument("--generator-weights", type=Path, required=True)
    p.add_argument("--classifier-run", type=Path, default=Path("runs/classifier"))
    p.add_argument("--table", type=Path, default=TABLE)
    p.add_argument("--out", type=Path, default=Path("runs/recognition"))
    p.add_argument("--emoji", type=int, default=256, help="emoji asked for (a seeded sample)")
    p.add_argument("--per-emoji", type=int, default=2, help="samples of each, seeds differ")
    p.add_argument("--cfg-scale", type=float, default=EMBEDDED.sampling.cfg_scale)
    p.add_argument("--temperature", type=float, default=EMBEDDED.sampling.temperature)
    p.add_argument("--top-k", type=int, default=EMBEDDED.sampling.top_k)
    p.add_argument("--top-p", type=float, default=EMBEDDED.sampling.top_p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--orderings", nargs="+", metavar="LABEL",
                   default=["raster 4x, with initial tokens", "distant 4x, with initial tokens",
                            "distant 4x, without initial tokens"])
    a = p.parse_args(argv)
    known = {spec.label: spec for spec in EVAL_SCHEDULES}
    unknown = [label for label in a.orderings if label not in known]
    if unknown:
        p.error(f"unknown ordering {unknown[0]!r}; choose from: {', '.join(known)}")
    table = json.loads(a.table.read_text())
    data = EmojiDataset.load(a.data)
    judge = load_trained_classifier(a.classifier_run, data.num_classes, "cpu")
    generator = exported_generator(a.generator_weights, "cpu")
    tokenizer = exported_tokenizer(a.tokenizer_weights, "cpu")
    rows = np.repeat(asked_emoji(table, a.emoji, a.seed), a.per_emoji)
    sampling = replace(EMBEDDED.sampling, cfg_scale=a.cfg_scale, temperature=a.temperature,
                       top_k=a.top_k, top_p=a.top_p, seed=a.seed)
    results, samples = evaluate(generator, tokenizer, judge, TrainingPictures.of(data, judge),
                                table, rows, [known[label] for label in a.orderings],
                                sampling, a.batch)
    a.out.mkdir(parents=True, exist_ok=True)
    table_md = format_table(results, sampling)
    (a.out / "table.md").write_text(table_md + "\n")
    (a.out / "results.json").write_text(json.dumps(
        {"results": [asdict(r) for r in results], "generator": str(a.generator_weights),
         "cfg_scale": a.cfg_scale, "temperature": a.temperature, "top_k": a.top_k,
         "top_p": a.top_p}, indent=1))
    key = [table[r]["name"] for r in rows[::a.per_emoji][:64]]
    (a.out / "grid_key.json").write_text(json.dumps(key, indent=0))
    for label, images in samples.items():
        Image.fromarray(naming_grid(images, a.per_emoji)).save(a.out / f"grid_{slug(label)}.png")
    print(table_md)


if __name__ == "__main__":
    main()
