"""The token grids of a memorisation probe: the training pictures of the emoji the evaluation
asks for first, and the held-out ones.

    python -m par_demo.train.probe_codes --emoji 64 --out runs/probe64_codes.npz

Trained alone (`generator --codes runs/probe64_codes.npz --start-from ...`), the same model sees
each of these pictures as often in a few hundred steps as the whole set needs thousands for,
and `par_demo.train.recognition --emoji 64` asks for exactly these emoji: how recognisable a
model of this size gets once it has learnt the drawings, and at which guidance.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from par_demo.train.codes import TokenGrids
from par_demo.train.per_emoji import TABLE
from par_demo.train.recognition import asked_emoji


def probe_grids(grids: TokenGrids, classes: list[int]) -> TokenGrids:
    """The rows of these classes and every held-out row (the held-out loss stays comparable)."""
    keep = (np.isin(grids.labels, classes) & ~grids.heldout) | grids.heldout
    return replace(grids, codes=grids.codes[keep], labels=grids.labels[keep],
                   heldout=grids.heldout[keep])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--codes", type=Path, default=Path("data/emoji64_extra_codes_gen3.npz"))
    p.add_argument("--table", type=Path, default=TABLE)
    p.add_argument("--emoji", type=int, default=64, help="as recognition's --emoji")
    p.add_argument("--seed", type=int, default=0, help="as recognition's --seed")
    p.add_argument("--out", type=Path, default=Path("runs/probe64_codes.npz"))
    a = p.parse_args(argv)
    classes = asked_emoji(json.loads(a.table.read_text()), a.emoji, a.seed)
    probe = probe_grids(TokenGrids.load(a.codes), classes)
    probe.save(a.out)
    print(f"{(~probe.heldout).sum()} training pictures of {len(classes)} emoji -> {a.out}")


if __name__ == "__main__":
    main()
