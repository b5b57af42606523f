"""The dataset as token grids: what the generator trains on.

    python -m par_demo.train.codes --tokenizer-run runs/tokenizer --data data/emoji64.npz \\
        --out data/emoji64_codes.npz [--device cuda]

Each image is encoded twice, as drawn and mirrored, so that the generator can train with flips
without ever running the tokenizer.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from par_demo.checkpoints import load_tokenizer
from par_demo.models.vq import VQModel
from par_demo.presets import EMOJI_TOKENIZER_GEN1, TOKENIZERS, TokenizerPreset
from par_demo.train.emoji_data import EmojiDataset, split_rows
from par_demo.train.tokenizer import encode_images, load_trained_tokenizer


@dataclass
class TokenGrids:
    codes: np.ndarray  # [N, 2, G, G] int16: each image, then its mirror image
    labels: np.ndarray  # [N]
    heldout: np.ndarray  # [N] bool
    codebook_size: int
    class_names: tuple[str, ...]
    # each class's 32-way group where classes are finer than groups (one class per emoji)
    class_groups: tuple[str, ...] | None = None

    @property
    def grid(self) -> int:
        return self.codes.shape[-1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def groups(self) -> tuple[str, ...]:
        return self.class_groups or self.class_names

    def indices(self, split: str) -> np.ndarray:
        return split_rows(self.heldout, split)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, codes=self.codes, labels=self.labels, heldout=self.heldout,
                            meta=np.array(json.dumps({"codebook_size": self.codebook_size,
                                                      "class_names": self.class_names,
                                                      "class_groups": self.class_groups})))

    @classmethod
    def load(cls, path: Path) -> "TokenGrids":
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            return cls(codes=f["codes"], labels=f["labels"].astype(np.int64), heldout=f["heldout"],
                       codebook_size=int(meta["codebook_size"]),
                       class_names=tuple(meta["class_names"]),
                       class_groups=tuple(meta["class_groups"]) if meta.get("class_groups")
                       else None)


def encode_dataset(tokenizer: VQModel, data: EmojiDataset, batch: int = 256) -> TokenGrids:
    plain = encode_images(tokenizer, data.images, batch)
    mirrored = encode_images(tokenizer, np.ascontiguousarray(data.images[:, :, ::-1]), batch)
    return TokenGrids(codes=np.stack([plain, mirrored], axis=1).astype(np.int16),
                      labels=data.labels, heldout=data.heldout,
                      codebook_size=tokenizer.args.codebook_size, class_names=data.class_names)


def exported_preset(path: Path) -> TokenizerPreset:
    """The tokenizer preset an exported file names in its metadata (gen1 if none: it predates
    the metadata)."""
    with safe_open(str(path), "pt") as f:
        name = (f.metadata() or {}).get("preset", EMOJI_TOKENIZER_GEN1.name)
    if name not in TOKENIZERS:
        raise ValueError(f"{path} is a tokenizer of preset {name!r}; known: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[name]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    source = p.add_mutually_exclusive_group()
    source.add_argument("--tokenizer-run", type=Path, default=Path("runs/tokenizer"))
    source.add_argument("--tokenizer-weights", type=Path,
                        help="an exported tokenizer with its encoder, e.g. "
                             "assets/emoji_tokenizer.safetensors")
    p.add_argument("--data", type=Path, default=Path("data/emoji64.npz"))
    p.add_argument("--out", type=Path, default=Path("data/emoji64_codes.npz"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)
    if a.tokenizer_weights is not None:
        preset = exported_preset(a.tokenizer_weights)
        preset = replace(preset, args=replace(preset.args, with_encoder=True))
        tokenizer = load_tokenizer(preset, a.tokenizer_weights, a.device)
    else:
        tokenizer = load_trained_tokenizer(a.tokenizer_run, a.device)
    grids = encode_dataset(tokenizer, EmojiDataset.load(a.data))
    grids.save(a.out)
    print(f"{len(grids.labels)} images x 2 (mirrored) as {grids.grid}x{grids.grid} grids of "
          f"{grids.codebook_size} codes -> {a.out}")


if __name__ == "__main__":
    main()
