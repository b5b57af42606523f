"""The shipped training pictures as token grids (assets/training_codes.npz): the real pictures
the paper's estimator (estimator.py) measures Figures 9 and 11 on, offline.

Built by `python -m par_demo.train.training_codes` from the dataset's codes; only training
pictures (never the held-out ones), as drawn (not mirrored). The file records the tokenizer that
encoded them, so a replaced tokenizer shows as a stale file.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from par_demo.classes import ASSETS
from par_demo.estimator import DependencyEstimator, EstimatorConfig, codebook_features

TRAINING_CODES = ASSETS / "training_codes.npz"


@dataclass(frozen=True)
class TrainingCodes:
    codes: np.ndarray  # [N, G, G] token ids of each training picture
    codebook_size: int
    tokenizer_sha256: str  # of the tokenizer file that encoded them
    source: str  # the dataset they come from

    def __len__(self) -> int:
        return len(self.codes)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, codes=self.codes.astype(np.uint16), meta=np.array(json.dumps({
            "codebook_size": self.codebook_size, "tokenizer_sha256": self.tokenizer_sha256,
            "source": self.source})))

    @classmethod
    def load(cls, path: Path = TRAINING_CODES) -> "TrainingCodes":
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            return cls(codes=f["codes"].astype(np.int64), codebook_size=int(meta["codebook_size"]),
                       tokenizer_sha256=str(meta["tokenizer_sha256"]), source=str(meta["source"]))


def shipped_codebook() -> np.ndarray:
    """[V, D] the embedded tokenizer's codebook vectors, as its decoder looks them up."""
    from par_demo.checkpoints import load_tokenizer, weight_file
    from par_demo.folder_codes import tokenizer_codebook
    from par_demo.presets import EMBEDDED

    return tokenizer_codebook(load_tokenizer(EMBEDDED.tokenizer, weight_file(
        EMBEDDED.tokenizer.weights, download=False)))


@functools.lru_cache(maxsize=1)
def shipped_estimator(config: EstimatorConfig = EstimatorConfig()) -> DependencyEstimator:
    """The estimator over every shipped training picture (a third of a second to build)."""
    return DependencyEstimator(codebook_features(TrainingCodes.load().codes, shipped_codebook()),
                               config)
