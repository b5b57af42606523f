"""Build the shipped training codes (assets/training_codes.npz) that the paper's estimator runs
on, every training picture's tokens as drawn, taken from the dataset's codes, and the estimator's
Figure 9 for every reference cell and Figure 11 for 8 orderings (assets/estimator_maps.npz and
estimator_orderings.npz; 10-15 min on one busy core).
Rerun it whenever the tokenizer, the dataset or the estimator changes.

    python -m par_demo.train.codes --tokenizer-weights assets/emoji_tokenizer.safetensors \\
        --data data/emoji64_extra.npz --out data/emoji64_extra_codes_gen2.npz --device cpu
    python -m par_demo.train.training_codes --codes data/emoji64_extra_codes_gen2.npz
"""
from __future__ import annotations

import argparse
from pathlib import Path

from par_demo.classes import ASSETS
from par_demo.heldout import file_sha256
from par_demo.presets import EMBEDDED
from par_demo.train.codes import TokenGrids
from par_demo.estimator import DependencyEstimator, codebook_features
from par_demo.training_codes import (ESTIMATOR_MAPS, ESTIMATOR_ORDERINGS, TRAINING_CODES,
                                     EstimatedMaps, TrainingCodes, compute_orderings,
                                     save_orderings, shipped_codebook)


def training_codes(grids: TokenGrids, tokenizer_sha256: str, source: str) -> TrainingCodes:
    """The training split's grids as drawn (column 0 of the plain / mirrored pair)."""
    rows = grids.indices("train")
    return TrainingCodes(codes=grids.codes[rows, 0].astype("int64"),
                         codebook_size=grids.codebook_size, tokenizer_sha256=tokenizer_sha256,
                         source=source)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--codes", type=Path, default=Path("data/emoji64_extra_codes_gen2.npz"),
                   help="the dataset's codes through the tokenizer (python -m par_demo.train.codes)")
    p.add_argument("--tokenizer-weights", type=Path,
                   default=ASSETS / EMBEDDED.tokenizer.weights.filename,
                   help="the tokenizer that encoded them")
    p.add_argument("--out", type=Path, default=TRAINING_CODES)
    p.add_argument("--maps-out", type=Path, default=ESTIMATOR_MAPS)
    p.add_argument("--orderings-out", type=Path, default=ESTIMATOR_ORDERINGS)
    a = p.parse_args(argv)
    grids = TokenGrids.load(a.codes)
    if grids.codebook_size != EMBEDDED.tokenizer.args.codebook_size:
        raise SystemExit(f"--codes: {a.codes} has {grids.codebook_size} codes, the embedded "
                         f"tokenizer {EMBEDDED.tokenizer.args.codebook_size}")
    codes = training_codes(grids, file_sha256(a.tokenizer_weights), a.codes.name)
    codes.save(a.out)
    print(f"{len(codes)} training pictures -> {a.out} ({a.out.stat().st_size / 1e3:.1f} kB)")
    estimator = DependencyEstimator(codebook_features(codes.codes, shipped_codebook()))
    EstimatedMaps.compute(estimator).save(a.maps_out)
    print(f"Figure 9 for every cell -> {a.maps_out} ({a.maps_out.stat().st_size / 1e3:.1f} kB)")
    save_orderings(compute_orderings(estimator), a.orderings_out)
    print(f"Figure 11 -> {a.orderings_out} ({a.orderings_out.stat().st_size / 1e3:.1f} kB)")


if __name__ == "__main__":
    main()
