"""The shipped training pictures as token grids (assets/training_codes.npz): the real pictures
the paper's estimator (estimator.py) measures Figures 9 and 11 on, offline; and Figure 9 for
every reference cell precomputed from them (assets/estimator_maps.npz, 2-3 s a cell live), so a
click on the Measure tab is a look-up, and Figure 11 for the tab's orderings
(assets/estimator_orderings.npz, 1-2 minutes live).

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
from par_demo.estimator import (DependencyEstimator, EstimatedMap, EstimatorConfig,
                                codebook_features)
from par_demo.estimator_orders import EstimatedIncrease, FoldGram, entropy_increase
from par_demo.orders import ScheduleSpec

TRAINING_CODES = ASSETS / "training_codes.npz"
ESTIMATOR_MAPS = ASSETS / "estimator_maps.npz"
ESTIMATOR_ORDERINGS = ASSETS / "estimator_orderings.npz"
# Figure 11's panels (c, f): distant and raster at 4x and 16x, with and without initial tokens
FIGURE11_ORDERINGS = tuple((order, parallel, init) for parallel in (4, 16)
                           for order in ("distant", "raster") for init in (True, False))


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


@dataclass(frozen=True)
class EstimatedMaps:
    """Figure 9 by the estimator for every reference cell of one set of pictures."""

    prior_entropy: np.ndarray  # [G, G]
    entropy: np.ndarray  # [G*G, G, G]: row c is the map given reference cell c
    null_information: np.ndarray  # [G*G, G, G]
    error: np.ndarray  # [G*G]
    pictures: int
    config: str  # repr of the EstimatorConfig they were computed with

    def map(self, cell: tuple[int, int]) -> EstimatedMap:
        G = self.prior_entropy.shape[0]
        row, col = (int(v) for v in cell)
        if not (0 <= row < G and 0 <= col < G):
            raise ValueError(f"cell must be (row, col) with both in 0..{G - 1}, got {cell}")
        c = row * G + col
        return EstimatedMap(cell=(row, col), pictures=self.pictures,
                            prior_entropy=self.prior_entropy, entropy=self.entropy[c].copy(),
                            null_information=self.null_information[c].copy(),
                            error=float(self.error[c]))

    @classmethod
    def compute(cls, estimator: DependencyEstimator) -> "EstimatedMaps":
        G = estimator.grid
        maps = [estimator.dependency_map(divmod(c, G)) for c in range(G * G)]
        return cls(prior_entropy=maps[0].prior_entropy,
                   entropy=np.stack([m.entropy for m in maps]),
                   null_information=np.stack([m.null_information for m in maps]),
                   error=np.array([m.error for m in maps]), pictures=estimator.pictures,
                   config=repr(estimator.config))

    def save(self, path: Path) -> None:
        np.savez_compressed(path, prior_entropy=self.prior_entropy,
                            entropy=self.entropy.astype(np.float32),
                            null_information=self.null_information.astype(np.float32),
                            error=self.error, meta=np.array(json.dumps({
                                "pictures": self.pictures, "config": self.config})))

    @classmethod
    def load(cls, path: Path = ESTIMATOR_MAPS) -> "EstimatedMaps":
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f["meta"]))
            return cls(prior_entropy=f["prior_entropy"],
                       entropy=f["entropy"].astype(np.float64),
                       null_information=f["null_information"].astype(np.float64),
                       error=f["error"], pictures=int(meta["pictures"]), config=meta["config"])


@functools.lru_cache(maxsize=1)
def shipped_maps() -> EstimatedMaps:
    """Figure 9 of the shipped training emoji for every reference cell, as shipped."""
    return EstimatedMaps.load()


def compute_orderings(estimator: DependencyEstimator) -> list[EstimatedIncrease]:
    gram = FoldGram(estimator)
    return [entropy_increase(gram, ScheduleSpec(estimator.grid, order, parallel, init))
            for order, parallel, init in FIGURE11_ORDERINGS]


def save_orderings(results: list[EstimatedIncrease], path: Path) -> None:
    np.savez_compressed(
        path, parallel_entropy=np.stack([r.parallel_entropy for r in results]),
        sequential_entropy=np.stack([r.sequential_entropy for r in results]),
        fold_mean_increase=np.stack([r.fold_mean_increase for r in results]),
        meta=np.array(json.dumps({
            "pictures": results[0].pictures, "context_radius": results[0].context_radius,
            "specs": [[r.spec.grid, r.spec.order, r.spec.parallel, r.spec.init_tokens]
                      for r in results]})))


@functools.lru_cache(maxsize=1)
def shipped_orderings(path: Path = ESTIMATOR_ORDERINGS) -> tuple[EstimatedIncrease, ...]:
    """Figure 11 of the shipped training emoji for FIGURE11_ORDERINGS, as shipped."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        return tuple(EstimatedIncrease(
            spec=ScheduleSpec(grid, order, parallel, init), pictures=int(meta["pictures"]),
            context_radius=meta["context_radius"], parallel_entropy=par, sequential_entropy=seq,
            fold_mean_increase=folds)
            for (grid, order, parallel, init), par, seq, folds in zip(
                meta["specs"], f["parallel_entropy"], f["sequential_entropy"],
                f["fold_mean_increase"]))
