"""Shared test helpers: the golden reference vectors, tiny presets in the official format, a
local Hugging Face cache laid out the way huggingface_hub writes it, and tiny emoji packages in
the real emoji-datasource layout (npm-style tarballs: package/emoji.json,
package/img/<style>/64/*.png) that every training test builds its data from."""
from __future__ import annotations

import argparse
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file

from par_demo.models.transformer import ModelArgs
from par_demo.models.vq import VQArgs
from par_demo.orders import ScheduleSpec
from par_demo.presets import ModelPreset, TokenizerPreset, WeightSource, get_preset
from par_demo.train.emoji_data import DataConfig, EmojiDataset, build_dataset, read_class_table

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


SUBCATEGORIES = ("face-smiling", "animal-mammal", "food-fruit", "country-flag")
EMOJI_PER_SUBCATEGORY = 5
APPLE_RED = (255, 0, 0)


def _png(rgba_colour: tuple, radius: int, square: bool) -> bytes:
    """A shape on a transparent 64 x 64 canvas (the real PNGs are RGBA with transparent corners)."""
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    box = (32 - radius, 32 - radius, 32 + radius, 32 + radius)
    (draw.rectangle if square else draw.ellipse)(box, fill=rgba_colour)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _tarball(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _package_json(name: str) -> bytes:
    return json.dumps({"name": name, "version": "16.0.0"}).encode()


def tiny_catalogue() -> list[dict]:
    entries = []
    for s, sub in enumerate(SUBCATEGORIES):
        for k in range(EMOJI_PER_SUBCATEGORY):
            code = f"{0x1F600 + 16 * s + k:X}"
            entries.append({"unified": code, "image": f"{code.lower()}.png", "subcategory": sub,
                            "name": f"{sub.upper()} NUMBER {k}", "short_names": [f"{sub}_{k}"],
                            "sort_order": 10 * s + k, "has_img_google": True,
                            # one emoji without a Twitter drawing
                            "has_img_twitter": not (s == 0 and k == 0),
                            "has_img_apple": True})
    hand = {"unified": "1F44B", "image": "1f44b.png", "subcategory": "hand-fingers-open",
            "name": "WAVING HAND SIGN", "short_names": ["wave"],
            "sort_order": 99, "has_img_google": True, "has_img_twitter": True,
            "skin_variations": {tone: {"unified": f"1F44B-{tone}",
                                       "image": f"1f44b-{tone.lower()}.png",
                                       "has_img_google": True, "has_img_twitter": True}
                                for tone in ("1F3FB", "1F3FF")}}
    swatch = {"unified": "1F3FB", "image": "1f3fb.png", "subcategory": "skin-tone",
              "sort_order": 100, "has_img_google": True, "has_img_twitter": True}
    return entries + [hand, swatch]


def all_images(catalogue: list[dict]) -> list[str]:
    names = []
    for e in catalogue:
        names.append(e["image"])
        names += [v["image"] for v in (e.get("skin_variations") or {}).values()]
    return names


def write_tiny_packages(folder: Path) -> Path:
    """The three npm tarballs (and an Apple one that must be ignored) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    catalogue = tiny_catalogue()
    _tarball(folder / "emoji-datasource-16.0.0.tgz",
             {"package.json": _package_json("emoji-datasource"),
              "emoji.json": json.dumps(catalogue).encode()})
    names = all_images(catalogue)
    for style, square in (("google", False), ("twitter", True)):
        files = {f"img/{style}/64/{name}": _png(((40 * i) % 200, 120, 255 - (30 * i) % 200, 255),
                                                 12 + i % 18, square)
                 for i, name in enumerate(names)}
        _tarball(folder / f"emoji-datasource-{style}-16.0.0.tgz",
                 {"package.json": _package_json(f"emoji-datasource-{style}"), **files})
    _tarball(folder / "emoji-datasource-apple-16.0.0.tgz",
             {"package.json": _package_json("emoji-datasource-apple"),
              **{f"img/apple/64/{name}": _png(APPLE_RED + (255,), 30, True) for name in names}})
    return folder


def tiny_dataset(folder: Path) -> EmojiDataset:
    return build_dataset(write_tiny_packages(folder / "npm"), read_class_table(), DataConfig(
        heldout_fraction=0.2))


def smiling_face_score(images_NHW3: np.ndarray) -> tuple[float, float]:
    """(darkest channel of the mean corner colour, red minus blue of the central half) of
    pictures of the embedded model's class 0: a trained model draws a yellow disc on white (both
    large); random weights draw coloured noise. The central half's median per picture, so a
    wide mouth or the eyes do not count against the disc (measured: 74 to 142 over the app's
    orderings at step 3000 of gen3, 25 for random weights)."""
    im = images_NHW3.astype(np.float64)
    corners = np.concatenate([im[:, :6, :6], im[:, :6, -6:], im[:, -6:, :6], im[:, -6:, -6:]], 1)
    h, w = im.shape[1:3]
    centre = im[:, h // 4:3 * h // 4, w // 4:3 * w // 4]
    yellow = np.median(centre[..., 0] - centre[..., 2], axis=(1, 2)).mean()
    return float(corners.mean((0, 1, 2)).min()), float(yellow)
