"""Shared test helpers: the golden reference vectors, tiny presets in the official format, and a
local Hugging Face cache laid out the way huggingface_hub writes it."""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from par_demo.models.transformer import ModelArgs
from par_demo.models.vq import VQArgs
from par_demo.orders import ScheduleSpec
from par_demo.presets import ModelPreset, TokenizerPreset, WeightSource, get_preset

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
INDEX = json.loads((GOLDEN / "index.json").read_text())
TRANSFORMER_CASES = {"par_tiny_4x": 4, "par_tiny_16x": 16, "llamagen_tiny_1x": 1}


def golden_args(case: str) -> ModelArgs:
    c = INDEX["cases"][case]["config"]
    return ModelArgs(dim=c["dim"], n_layer=c["n_layer"], n_head=c["n_head"],
                     multiple_of=c["multiple_of"], norm_eps=c["norm_eps"],
                     rope_base=c["rope_base"], vocab_size=c["vocab_size"], grid=c["grid"],
                     num_classes=c["num_classes"], num_fillers=c.get("spe_token_num", 0))


def golden_vq_args() -> VQArgs:
    c = INDEX["cases"]["vq_tiny"]["config"]
    return VQArgs(codebook_size=c["codebook_size"], codebook_embed_dim=c["codebook_embed_dim"],
                  codebook_l2_norm=c["codebook_l2_norm"], z_channels=c["z_channels"],
                  ch=c["decoder_ch"], encoder_ch_mult=tuple(c["decoder_ch_mult"]),
                  decoder_ch_mult=tuple(c["decoder_ch_mult"]),
                  num_res_blocks=c["num_res_blocks"], with_encoder=False)


def golden_weights(case: str) -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / f"{case}.weights.safetensors"))


def golden_expected(case: str) -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / f"{case}.expected.safetensors"))


def golden_spec(case: str) -> ScheduleSpec:
    n = TRANSFORMER_CASES[case]
    return ScheduleSpec(grid=golden_args(case).grid, order="distant" if n > 1 else "raster",
                        parallel=n)


def tiny_released_preset(base: str, case: str, repo_id: str) -> ModelPreset:
    """A released preset shrunk to a golden tiny architecture and pointed at a test repo."""
    preset = get_preset(base)
    tokenizer = TokenizerPreset("VQ-tiny", golden_vq_args(), WeightSource("vq_tiny.pt", repo_id))
    return replace(preset, name=f"{base}-tiny", args=golden_args(case), classes="numbered",
                   weights=replace(preset.weights, repo_id=repo_id), tokenizer=tokenizer,
                   runs=golden_spec(case))


def save_official(path: Path, state: dict[str, torch.Tensor], wrapper: str | None = "model") -> Path:
    """A .pt the way the official training scripts write it: the state dict under `wrapper`
    (bare when None), next to the arguments as an argparse.Namespace."""
    obj = state if wrapper is None else {wrapper: state,
                                         "args": argparse.Namespace(image_size=384)}
    torch.save(obj, path)
    return path


class HubCache:
    """A local Hugging Face hub cache: models--org--name/snapshots/<commit>/file, refs/main."""

    COMMIT = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, root: Path):
        self.root = root

    def snapshot(self, repo_id: str) -> Path:
        repo = self.root / ("models--" + repo_id.replace("/", "--"))
        snap = repo / "snapshots" / self.COMMIT
        snap.mkdir(parents=True, exist_ok=True)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(self.COMMIT)
        return snap

    def add(self, repo_id: str, filename: str, state: dict[str, torch.Tensor],
            wrapper: str | None = "model") -> Path:
        return save_official(self.snapshot(repo_id) / filename, state, wrapper)
