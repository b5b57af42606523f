"""The shipped held-out pictures as token grids (assets/heldout_codes.npz): the real pictures the
dependency maps and the entropy-increase figure run on, offline and without a dataset build.

Built by `python -m par_demo.train.heldout_codes` from the dataset and the shipped tokenizer; the
file records the tokenizer it was encoded with, so a replaced tokenizer shows as a stale file.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from par_demo.classes import ASSETS

HELDOUT_CODES = ASSETS / "heldout_codes.npz"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class HeldoutGrids:
    codes: np.ndarray  # [N, G, G] token ids of each held-out picture (as drawn, not mirrored)
    labels: np.ndarray  # [N] class ids
    group: np.ndarray  # [N] str, the emoji's code points
    style: np.ndarray  # [N] str, google (Noto Emoji) | twitter (Twemoji)
    codebook_size: int
    tokenizer_sha256: str  # of the tokenizer file that encoded them

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def grid(self) -> int:
        return self.codes.shape[-1]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, codes=self.codes.astype(np.uint16),
                            labels=self.labels.astype(np.uint8), group=self.group,
                            style=self.style, meta=np.array(json.dumps({
                                "codebook_size": self.codebook_size,
                                "tokenizer_sha256": self.tokenizer_sha256})))

    @classmethod
    def load(cls, path: Path = HELDOUT_CODES) -> "HeldoutGrids":
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            return cls(codes=f["codes"].astype(np.int64), labels=f["labels"].astype(np.int64),
                       group=f["group"], style=f["style"],
                       codebook_size=int(meta["codebook_size"]),
                       tokenizer_sha256=str(meta["tokenizer_sha256"]))
