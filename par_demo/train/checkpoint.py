"""Resumable training state: plain tensors and numbers that torch.load(weights_only=True) reads.

One file per run folder (checkpoint.pt), replaced atomically so that a run killed mid-save keeps
its previous checkpoint. The training config rides along as JSON, so a resumed run can refuse to
continue under a different config.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainingState:
    step: int  # optimizer steps taken
    config: dict  # the stage's training config (dataclasses.asdict)
    model: dict[str, torch.Tensor]
    optimizer: dict
    extra: dict[str, torch.Tensor]  # stage-specific tensors (e.g. codebook usage counts)


def checkpoint_path(run: Path) -> Path:
    return run / CHECKPOINT


def save_state(run: Path, state: TrainingState) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(run)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": state.step, "config": json.dumps(state.config), "model": state.model,
                "optimizer": state.optimizer, "extra": state.extra}, tmp)
    os.replace(tmp, path)
    return path


def load_state(run: Path) -> TrainingState | None:
    """The run's checkpoint on the CPU, or None when it has none yet."""
    path = checkpoint_path(run)
    if not path.is_file():
        return None
    raw = torch.load(path, map_location="cpu", weights_only=True)
    return TrainingState(step=int(raw["step"]), config=json.loads(raw["config"]),
                         model=raw["model"], optimizer=raw["optimizer"], extra=raw["extra"])


# How long and how often a run reports; changing them does not change what is trained.
# settings a run may change when it resumes: its length, its logging, and how the CPU computes
BOOKKEEPING = ("steps", "log_every", "eval_every", "save_every", "cpu_bf16")


def training_metadata(state: TrainingState) -> dict[str, str]:
    """What an exported weight file records of its run, so training can continue from it."""
    return {"training_step": str(state.step), "training_config": json.dumps(state.config)}


def exported_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), "pt") as f:
        return f.metadata() or {}


def load_exported(path: Path) -> TrainingState:
    """Weights and step of an exported file, to continue training from it with fresh optimizer
    moments (full training states stay out of git; exported weights do not)."""
    metadata = exported_metadata(path)
    if "training_step" not in metadata or "training_config" not in metadata:
        raise ValueError(f"{path} records no training step and config; export it with "
                         "par_demo.train.export")
    return TrainingState(step=int(metadata["training_step"]),
                         config=json.loads(metadata["training_config"]),
                         model=load_file(str(path)), optimizer={}, extra={})


def check_same_config(saved: dict, requested: dict, ignore: tuple[str, ...] = BOOKKEEPING) -> None:
    """Resuming under another config would silently mix two experiments."""
    saved, requested = (json.loads(json.dumps(c)) for c in (saved, requested))  # tuples: lists
    diff = sorted(k for k in set(saved) | set(requested)
                  if k not in ignore and saved.get(k) != requested.get(k))
    if diff:
        raise ValueError(f"the checkpoint was trained with another config ({', '.join(diff)} "
                         "differ); start a new run folder or drop --resume")
