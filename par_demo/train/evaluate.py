"""Compare orderings with the same weights: Frechet distance, class accuracy, steps and CPU time.

    python -m par_demo.train.evaluate --data data/emoji64.npz --out runs/eval \\
        --tokenizer-run runs/tokenizer --generator-run runs/generator \\
        --classifier-run runs/classifier --profile gpu --device cuda

Every ordering generates the same classes with the same seeds. The Frechet distance compares the
classifier's features of the generated images with those of the held-out real images; class
accuracy is the share classified as the requested class. CPU time is one guided image on
`cpu_threads` threads, without and with a decoded preview after every step (what the app shows).
Writes table.md, results.json and one samples_<ordering>.png per ordering. Exported files
(`--tokenizer-weights`, `--generator-weights`) stand in for run folders; `--reference-only` scores
the tokenizer's reconstructions alone (no generator).
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from par_demo.batch_sampling import sample_all
from par_demo.checkpoints import load_tokenizer, load_transformer
from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.orders import Schedule, build_schedule
from par_demo.presets import embedded_generation
from par_demo.preview import decode_tokens, masked_preview
from par_demo.sampler import SamplingConfig, sample_steps
from par_demo.train.checkpoint import exported_metadata
from par_demo.train.classifier import EmojiClassifier, load_trained_classifier, predict
from par_demo.train.codes import exported_preset
from par_demo.train.config import (RIVAL_SCHEDULES, EvalConfig, GeneratorTraining, from_dict,
                                   profile)
from par_demo.train.emoji_data import EmojiDataset
from par_demo.train.generator import load_trained_generator
from par_demo.train.metrics import frechet_distance
from par_demo.train.tokenizer import decode_codes, encode_images, load_trained_tokenizer


@dataclass(frozen=True)
class OrderingResult:
    label: str
    steps: int
    frechet: float  # to the held-out real images, in classifier features
    class_accuracy: float  # generated images classified as the requested class
    cpu_ms: float  # one guided image on the CPU, final decode included
    cpu_ms_previews: float  # the same plus a decoded preview after every step


@dataclass(frozen=True)
class RealReference:
    """What real images score: the floor of the distance and the ceiling of the accuracy. The
    tokenizer's reconstructions of the same training images show what its codes alone cost."""

    frechet_train_vs_heldout: float
    heldout_accuracy: float
    frechet_reconstructed_vs_heldout: float
    reconstructed_heldout_accuracy: float


def cpu_seconds(generator: Transformer, tokenizer: VQModel, schedule: Schedule, class_id: int,
                sampling: SamplingConfig, previews: bool) -> float:
    """Wall time of one image on the CPU models, as the app makes it."""
    start = time.perf_counter()
    last = None
    for last in sample_steps(generator, schedule, [class_id], sampling):
        if previews:
            masked_preview(tokenizer, last.tokens, schedule.grid)
    decode_tokens(tokenizer, last.tokens, schedule.grid)
    return time.perf_counter() - start


def time_orderings(generator: Transformer, tokenizer: VQModel, config: EvalConfig,
                   sampling: SamplingConfig) -> dict[str, tuple[float, float]]:
    """Median ms per image (plain, with previews) per ordering, on config.cpu_threads threads."""
    gen_cpu, tok_cpu = copy.deepcopy(generator).cpu(), copy.deepcopy(tokenizer).cpu()
    threads = torch.get_num_threads()
    torch.set_num_threads(config.cpu_threads)
    try:
        out = {}
        warm_up = build_schedule(config.schedules[0])
        cpu_seconds(gen_cpu, tok_cpu, warm_up, 0, sampling, previews=True)
        for spec in config.schedules:
            schedule = build_schedule(spec)
            runs = [[cpu_seconds(gen_cpu, tok_cpu, schedule, i, sampling, previews)
                     for i in range(config.timing_images)] for previews in (False, True)]
            out[spec.label] = tuple(1000 * float(np.median(r)) for r in runs)
        return out
    finally:
        torch.set_num_threads(threads)


def reconstruct(tokenizer: VQModel, images_NHW3: np.ndarray, batch: int) -> np.ndarray:
    return decode_codes(tokenizer, encode_images(tokenizer, images_NHW3, batch), batch)


def real_reference(classifier: EmojiClassifier, tokenizer: VQModel, data: EmojiDataset,
                   heldout_features: np.ndarray, batch: int) -> RealReference:
    train_idx, heldout_idx = data.indices("train"), data.indices("heldout")
    subset = train_idx[np.linspace(0, len(train_idx) - 1, len(heldout_features)).astype(int)]
    train_features, _ = predict(classifier, data.images[subset])
    recon_features, _ = predict(classifier, reconstruct(tokenizer, data.images[subset], batch))
    _, pred = predict(classifier, data.images[heldout_idx])
    _, recon_pred = predict(classifier, reconstruct(tokenizer, data.images[heldout_idx], batch))
    labels = data.labels[heldout_idx]
    return RealReference(frechet_distance(train_features, heldout_features),
                         float((pred == labels).mean()),
                         frechet_distance(recon_features, heldout_features),
                         float((recon_pred == labels).mean()))


def evaluate_orderings(generator: Transformer, tokenizer: VQModel, classifier: EmojiClassifier,
                       data: EmojiDataset, config: EvalConfig, timing: bool = True):
    """(results per ordering, the real-image reference, sample images per ordering label).
    Without `timing` the CPU columns are NaN (a guidance sweep needs only the quality)."""
    sampling = SamplingConfig(cfg_scale=config.cfg_scale, temperature=config.temperature,
                              top_k=config.top_k, seed=config.seed)
    heldout_features, _ = predict(classifier, data.images[data.indices("heldout")])
    class_ids = np.repeat(np.arange(data.num_classes), config.images_per_class)
    nan = (float("nan"), float("nan"))
    timings = (time_orderings(generator, tokenizer, config, sampling) if timing
               else {spec.label: nan for spec in config.schedules})
    results, samples = [], {}
    for spec in config.schedules:
        schedule = build_schedule(spec)
        # picture i draws from seed (config.seed, i): every ordering gets the same seeds
        images = sample_all(generator, tokenizer, schedule, class_ids, sampling,
                            config.batch_size)
        features, pred = predict(classifier, images)
        results.append(OrderingResult(
            label=spec.label, steps=schedule.num_steps,
            frechet=frechet_distance(features, heldout_features),
            class_accuracy=float((pred == class_ids).mean()),
            cpu_ms=timings[spec.label][0], cpu_ms_previews=timings[spec.label][1]))
        samples[spec.label] = images
    reference = real_reference(classifier, tokenizer, data, heldout_features, config.batch_size)
    return results, reference, samples


def format_table(results: list[OrderingResult], reference: RealReference,
                 config: EvalConfig) -> str:
    lines = [
        "| ordering | steps | Frechet distance | class accuracy | CPU ms / image "
        "| CPU ms with step previews |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r.label} | {r.steps} | {r.frechet:.2f} | {r.class_accuracy:.1%} "
              f"| {r.cpu_ms:.0f} | {r.cpu_ms_previews:.0f} |" for r in results]
    lines += [
        "",
        f"Real images: held-out vs training split Frechet distance "
        f"{reference.frechet_train_vs_heldout:.2f}; classifier held-out accuracy "
        f"{reference.heldout_accuracy:.1%}. Tokenizer reconstructions of the same images: "
        f"{reference.frechet_reconstructed_vs_heldout:.2f} and "
        f"{reference.reconstructed_heldout_accuracy:.1%}.",
        f"Guidance {config.cfg_scale}, temperature {config.temperature}, top-k {config.top_k}; "
        f"{config.images_per_class} images per class; CPU timings on {config.cpu_threads} threads.",
    ]
    return "\n".join(lines)


def sample_grid(images: np.ndarray, num_classes: int, per_class: int, side: int,
                classes_per_row: int) -> np.ndarray:
    """A side x side block of samples per class (images are ordered class by class), blocks in
    class order, `classes_per_row` blocks to a row; missing blocks stay white."""
    shown = min(side * side, per_class)
    h, w = images.shape[1:3]
    rows = -(-num_classes // classes_per_row)
    grid = np.full((rows * side * h, classes_per_row * side * w, 3), 255, np.uint8)
    for c in range(num_classes):
        top, left = (c // classes_per_row) * side * h, (c % classes_per_row) * side * w
        for k in range(shown):
            y, x = top + (k // side) * h, left + (k % side) * w
            grid[y:y + h, x:x + w] = images[c * per_class + k]
    return grid


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def write_report(out: Path, results, reference, samples, data: EmojiDataset,
                 config: EvalConfig) -> str:
    out.mkdir(parents=True, exist_ok=True)
    table = format_table(results, reference, config)
    (out / "table.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps(
        {"orderings": [asdict(r) for r in results], "real": asdict(reference),
         "config": asdict(config)}, indent=1))
    for label, images in samples.items():
        grid = sample_grid(images, data.num_classes, config.images_per_class,
                           config.grid_side, config.grid_classes_per_row)
        # flat emoji colours survive a 256-colour palette; the file is a third of the RGB one
        Image.fromarray(grid).quantize(256).save(out / f"samples_{slug(label)}.png",
                                                  optimize=True)
    return table


def exported_tokenizer(path: Path, device) -> VQModel:
    """An exported tokenizer with its encoder (the reconstructions need it)."""
    preset = exported_preset(path)
    return load_tokenizer(replace(preset, args=replace(preset.args, with_encoder=True)), path,
                          device).eval()


def exported_generator(path: Path, device) -> Transformer:
    """An exported generator, built as the embedded generation its training config describes."""
    config = json.loads(exported_metadata(path).get("training_config", "{}"))
    if "model" not in config:
        raise ValueError(f"{path} records no generator training config; is it a generator "
                         "exported with par_demo.train.export?")
    args = from_dict(GeneratorTraining, config).model
    return load_transformer(embedded_generation(args), path, device).eval()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("data/emoji64.npz"))
    tokenizer_source = p.add_mutually_exclusive_group()
    tokenizer_source.add_argument("--tokenizer-run", type=Path, default=Path("runs/tokenizer"))
    tokenizer_source.add_argument("--tokenizer-weights", type=Path,
                                  help="an exported tokenizer instead of a run folder")
    generator_source = p.add_mutually_exclusive_group()
    generator_source.add_argument("--generator-run", type=Path, default=Path("runs/generator"))
    generator_source.add_argument("--generator-weights", type=Path,
                                  help="an exported generator instead of a run folder")
    p.add_argument("--reference-only", action="store_true",
                   help="score the real pictures and the tokenizer's reconstructions only")
    p.add_argument("--classifier-run", type=Path, default=Path("runs/classifier"))
    p.add_argument("--out", type=Path, default=Path("runs/eval"))
    p.add_argument("--profile", default="gpu", help="toy | cpu | gpu")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--cfg-scale", type=float, help="override the profile's guidance scale")
    p.add_argument("--temperature", type=float, help="override the profile's temperature")
    p.add_argument("--top-k", type=int, help="override the profile's top-k")
    p.add_argument("--images-per-class", type=int,
                   help="override the profile's samples per class (more: less seed noise)")
    p.add_argument("--seed", type=int, help="override the profile's first sampling seed")
    p.add_argument("--no-timing", action="store_true", help="skip the CPU timing columns")
    p.add_argument("--rivals", action="store_true",
                   help="also evaluate PAR's rivals (ZipAR, the diagonal, random-cosine) at "
                        "step budgets near 67 and 31")
    p.add_argument("--orderings", nargs="+", metavar="LABEL",
                   help='evaluate only these, e.g. "raster 1x" "distant 4x, with initial tokens" '
                        '"zipar, window 2" "diagonal wavefront" "random-cosine, 31 steps"')
    a = p.parse_args(argv)
    config = profile(a.profile).evaluation
    overrides = {"cfg_scale": a.cfg_scale, "temperature": a.temperature, "top_k": a.top_k,
                 "images_per_class": a.images_per_class, "seed": a.seed}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    if a.rivals:
        config = replace(config, schedules=config.schedules + RIVAL_SCHEDULES)
    if a.orderings:
        known = {spec.label: spec for spec in config.schedules + RIVAL_SCHEDULES}
        unknown = [label for label in a.orderings if label not in known]
        if unknown:
            p.error(f"unknown ordering {unknown[0]!r}; choose from: {', '.join(known)}")
        config = replace(config, schedules=tuple(known[label] for label in a.orderings))
    data = EmojiDataset.load(a.data)
    tokenizer = (exported_tokenizer(a.tokenizer_weights, a.device) if a.tokenizer_weights
                 else load_trained_tokenizer(a.tokenizer_run, a.device))
    classifier = load_trained_classifier(a.classifier_run, data.num_classes, a.device)
    if a.reference_only:
        heldout_features, _ = predict(classifier, data.images[data.indices("heldout")])
        reference = real_reference(classifier, tokenizer, data, heldout_features,
                                   config.batch_size)
        print(json.dumps(asdict(reference)))
        return
    generator = (exported_generator(a.generator_weights, a.device) if a.generator_weights
                 else load_trained_generator(a.generator_run, a.device))
    results, reference, samples = evaluate_orderings(generator, tokenizer, classifier, data,
                                                     config, timing=not a.no_timing)
    print(write_report(a.out, results, reference, samples, data, config))


if __name__ == "__main__":
    main()
