"""`python -m par_demo sample`: many pictures into one .npz in the ADM evaluator's layout, on one
device or under torchrun.

Pictures are cut into batches of `--batch` by index (batch k holds pictures k*B ...), batch k goes
to rank k mod world size, and each picture draws from its own seed (batch_sampling.py), so the
batches and their pictures are the same at any world size. Every finished batch is written as its
own shard in `<out>.parts/` (atomically: a killed run loses at most the batch each rank was on);
a rerun with the same settings skips the shards that are there. When all are done rank 0 joins
them into `<out>` (arr_0: uint8 N x H x W x 3, arr_1: int64 labels) and removes the shards.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image
from tqdm import tqdm

from par_demo.batch_sampling import even_labels, sample_pictures
from par_demo.orders import Schedule, ScheduleSpec
from par_demo.presets import ModelPreset
from par_demo.sampling import SamplingConfig

@dataclass(frozen=True)
class SampleJob:
    preset: ModelPreset
    schedule: Schedule
    class_id: int | None  # None: every class in turn (picture i is class i mod num_classes)
    num_images: int  # pictures in all
    batch: int  # pictures per forward (per rank); part of what fixes the pixels
    sampling: SamplingConfig  # picture i draws from a seed made of (sampling.seed, i)
    dtype: str  # transformer weights
    image_size: int | None  # resize to this side before rounding; None: the model's size
    device: str  # cpu or cuda (under torchrun each rank takes cuda:LOCAL_RANK)
    out: Path
    png_dir: Path | None

    @property
    def num_batches(self) -> int:
        return -(-self.num_images // self.batch)

    @property
    def parts(self) -> Path:
        return self.out.with_name(self.out.name + ".parts")

    def indices(self, k: int) -> range:
        return range(k * self.batch, min((k + 1) * self.batch, self.num_images))

    def labels(self, indices: range) -> np.ndarray:
        if self.class_id is not None:
            return np.full(len(indices), self.class_id, dtype=np.int64)
        return even_labels(indices.stop, self.preset.args.num_classes)[indices.start:]

    def settings(self) -> dict:
        """What fixes the pictures (the world size and device do not): a rerun must match it."""
        return {"model": self.preset.name, "schedule": asdict(self.schedule.spec),
                "class": self.class_id, "num_images": self.num_images, "batch": self.batch,
                "sampling": asdict(self.sampling), "dtype": self.dtype,
                "image_size": self.image_size}


def job_from_args(a: argparse.Namespace, preset: ModelPreset, spec: ScheduleSpec) -> SampleJob:
    """Checks every flag before any process group or model exists; ValueError names the flag."""
    for flag, value, low in (("--num-images", a.num_images, 1), ("--batch", a.batch, 1),
                             ("--seed", a.seed, 0)):
        if value < low:
            raise ValueError(f"{flag} must be a whole number >= {low}, got {value}")
    if a.image_size is not None and not 8 <= a.image_size <= 4096:
        raise ValueError(f"--image-size must be a side in pixels from 8 to 4096, "
                         f"got {a.image_size}")
    if a.device != "cpu" and a.device.split(":")[0] != "cuda":
        raise ValueError(f"--device must be cpu or cuda, got {a.device!r}")
    if a.device != "cpu" and not torch.cuda.is_available():
        raise ValueError(f"--device {a.device}: no CUDA device is visible to this process")
    out = Path(a.out)
    if out.suffix != ".npz":
        raise ValueError(f"--out must name a .npz file, got {a.out!r}")
    if out.exists():
        raise ValueError(f"--out {a.out} exists already; delete it or choose another path")
    overrides = {k: v for k, v in (("cfg_scale", a.cfg), ("temperature", a.temperature),
                                   ("top_k", a.top_k), ("top_p", a.top_p)) if v is not None}
    sampling = replace(preset.sampling, seed=a.seed, **overrides)
    sampling.validate()
    class_id = None if a.class_ is None else preset.class_names().resolve(a.class_)
    return SampleJob(preset=preset, schedule=preset.check(spec), class_id=class_id,
                     num_images=a.num_images, batch=a.batch, sampling=sampling,
                     dtype=a.dtype, image_size=a.image_size, device=a.device, out=out,
                     png_dir=None if a.png_dir is None else Path(a.png_dir))


@dataclass(frozen=True)
class Ranks:
    rank: int
    world: int
    local_rank: int

    @property
    def leader(self) -> bool:
        return self.rank == 0


def join_ranks(device_type: str) -> Ranks:
    """The process group torchrun describes in the environment; one process without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks(0, 1, 0)
    local_rank = int(os.environ["LOCAL_RANK"])
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), local_rank)


def _everyone(ranks: Ranks, value) -> list:
    """`value` from every rank, in rank order."""
    if ranks.world == 1:
        return [value]
    values = [None] * ranks.world
    dist.all_gather_object(values, value)
    return values


class ShardStore:
    """One .npz per finished batch; a file there is complete (written aside, then renamed)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, k: int) -> Path:
        return self.folder / f"batch_{k:06d}.npz"

    def done(self, k: int) -> bool:
        return self.path(k).exists()

    def count(self) -> int:
        return sum(1 for _ in self.folder.glob("batch_*.npz"))

    def write(self, k: int, images: np.ndarray, labels: np.ndarray) -> None:
        aside = self.folder / f".batch_{k:06d}.npz.partial"
        with open(aside, "wb") as f:
            np.savez(f, images=images, labels=labels)
        os.replace(aside, self.path(k))

    def read(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.path(k)) as shard:
            return shard["images"], shard["labels"]


def _prepare(job: SampleJob) -> str | None:
    """Leader only: the shard folder holding this job's settings, or why it cannot be used."""
    job.parts.mkdir(parents=True, exist_ok=True)
    settings_file = job.parts / "job.json"
    if settings_file.exists():
        there = json.loads(settings_file.read_text())
        differ = [k for k in job.settings() if there.get(k) != job.settings()[k]]
        if differ:
            return (f"{job.parts} holds shards of a run with other settings ({', '.join(differ)}"
                    f" differ); rerun with those or delete the folder")
    else:
        settings_file.write_text(json.dumps(job.settings(), indent=1))
    if job.png_dir is not None:
        job.png_dir.mkdir(parents=True, exist_ok=True)
    return None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def _write_result(job: SampleJob, store: ShardStore) -> None:
    """Leader only: every shard into `job.out` (written aside, then renamed)."""
    missing = [k for k in range(job.num_batches) if not store.done(k)]
    if missing:
        raise RuntimeError(f"batch {missing[0]} is missing from {job.parts}; on several nodes "
                           f"--out must be on a filesystem every node sees")
    first, _ = store.read(0)
    images = np.empty((job.num_images, *first.shape[1:]), np.uint8)
    labels = np.empty(job.num_images, np.int64)
    for k in range(job.num_batches):
        indices = job.indices(k)
        images[indices.start:indices.stop], labels[indices.start:indices.stop] = store.read(k)
    aside = job.out.with_name(job.out.name + ".partial")
    with open(aside, "wb") as f:
        np.savez(f, images, labels)  # arr_0, arr_1: the ADM evaluator reads arr_0
    os.replace(aside, job.out)
    shutil.rmtree(job.parts)


def run_job(job: SampleJob) -> dict | None:
    """Make the job's missing batches on this rank; the leader writes the result and returns
    the report (images per second over the pictures made by this run, on all ranks)."""
    from par_demo.checkpoints import load_model

    device_type = job.device.split(":")[0]
    ranks = join_ranks(device_type)
    try:
        device = torch.device(f"cuda:{ranks.local_rank}" if device_type == "cuda" and
                              ranks.world > 1 else job.device)
        problem = _prepare(job) if ranks.leader else None
        problem = _everyone(ranks, problem)[0]
        if problem:
            raise ValueError(problem)
        store = ShardStore(job.parts)
        loaded = load_model(job.preset, device=device, dtype=getattr(torch, job.dtype))
        mine = [k for k in range(ranks.rank, job.num_batches, ranks.world) if not store.done(k)]
        bar = tqdm(total=job.num_batches, initial=store.count(), unit="batch",
                   disable=not ranks.leader, desc="sample")
        start = time.perf_counter()
        made = 0
        for k in mine:
            indices = job.indices(k)
            labels = job.labels(indices)
            images = sample_pictures(loaded.transformer, loaded.tokenizer, job.schedule,
                                     labels, indices, job.sampling, job.image_size)
            if job.png_dir is not None:
                for i, image in zip(indices, images):
                    Image.fromarray(image).save(job.png_dir / f"{i:06d}.png")
            store.write(k, images, labels)
            made += len(indices)
            bar.n = store.count()
            bar.refresh()
        seconds = time.perf_counter() - start
        counts = _everyone(ranks, (made, seconds))
        bar.n = store.count()
        bar.close()
        if not ranks.leader:
            return None
        _write_result(job, store)
        made_all, slowest = sum(c[0] for c in counts), max(c[1] for c in counts)
        return {
            "model": job.preset.name, "schedule": job.schedule.spec.label,
            "steps": job.schedule.num_steps, "images": job.num_images, "new_images": made_all,
            "resumed_images": job.num_images - made_all, "batch": job.batch,
            "seconds": round(slowest, 3),
            "images_per_second": round(made_all / slowest, 3) if made_all else None,
            "device": device.type, "device_name": _device_name(device),
            "world_size": ranks.world, "out": str(job.out),
            "png_dir": None if job.png_dir is None else str(job.png_dir),
        }
    finally:
        if ranks.world > 1:
            dist.destroy_process_group()
