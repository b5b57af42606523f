"""One class per emoji (the third generation): its class table, its token grids, its warm start.

    python -m par_demo.train.per_emoji --data data/emoji64_extra.npz \\
        --codes data/emoji64_extra_codes_gen2.npz --out-codes data/emoji64_extra_codes_gen3.npz \\
        [--table assets/emoji_classes_gen3.json] [--widen assets/emoji_generator.safetensors \\
        --widened runs/gen3_start.safetensors]

Every emoji of the training split becomes a class named after it (skin tones and other variants
are folded into their base emoji by the dataset already), in the dataset's order: the 32-way
groups of the second generation, catalogue order inside each. Each entry keeps its group, so
grids, the evaluation and Measure can still be summarised by group. Held-out emoji get no class:
their rows are labelled with the null class, so the held-out loss is the unconditional one and
no held-out drawing is ever trained on. Each held-out emoji is given the class of its nearest
training sibling (same group, nearest in catalogue order), for editing its pictures.

`--widen` turns the shipped 32-class generator into a warm start of the per-emoji model: each
emoji's class embedding starts as its group's, the null class stays the null class.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from par_demo.classes import ASSETS
from par_demo.train.checkpoint import exported_metadata, load_exported
from par_demo.train.codes import TokenGrids
from par_demo.train.config import GeneratorTraining, from_dict
from par_demo.train.emoji_data import CATALOGUE_PACKAGE, EmojiDataset, read_member, tarball

TABLE = ASSETS / "emoji_classes_gen3.json"
SIBLINGS = ASSETS / "emoji_heldout_siblings.json"
CLASS_EMBEDDING = "cls_embedding.embedding_table.weight"


def catalogue_entries(packages: Path) -> dict[str, dict]:
    """emoji-datasource's catalogue by code points."""
    entries = json.loads(read_member(tarball(packages, CATALOGUE_PACKAGE), "emoji.json"))
    return {e["unified"]: e for e in entries}


def character(code_points: str) -> str:
    return "".join(chr(int(c, 16)) for c in code_points.split("-"))


def build_table(data: EmojiDataset, catalogue: dict[str, dict]) -> list[dict]:
    """One entry per training emoji, in dataset order (group, then catalogue order)."""
    train = data.indices("train")
    group_of = dict(zip(data.group[train].tolist(), data.labels[train].tolist()))
    table = []
    for emoji, group in group_of.items():
        entry = catalogue[emoji]
        table.append({"name": entry["name"].lower(), "emoji": emoji, "char": character(emoji),
                      "group": int(group), "short_names": entry["short_names"]})
    names = [c["name"] for c in table]
    if len(set(names)) != len(names):
        raise ValueError("two training emoji share a catalogue name; the class table needs "
                         "unique names")
    return table


def heldout_siblings(data: EmojiDataset, catalogue: dict[str, dict],
                     table: list[dict]) -> dict[str, int]:
    """For each held-out emoji, the class of the training emoji of its group that is nearest in
    catalogue order: what an unseen picture is edited as, since it has no class of its own."""
    order = {e: catalogue[e]["sort_order"] for e in catalogue}
    held = data.indices("heldout")
    out = {}
    for emoji, group in dict(zip(data.group[held].tolist(), data.labels[held].tolist())).items():
        siblings = [i for i, c in enumerate(table) if c["group"] == group]
        out[emoji] = min(siblings, key=lambda i: abs(order[table[i]["emoji"]] - order[emoji]))
    return out


def relabel(grids: TokenGrids, data: EmojiDataset, table: list[dict]) -> TokenGrids:
    """The same grids with a class per emoji; held-out rows get the null class."""
    if len(grids.labels) != len(data.labels):
        raise ValueError(f"the codes hold {len(grids.labels)} rows and the dataset "
                         f"{len(data.labels)}: encode this dataset first")
    index_of = {c["emoji"]: i for i, c in enumerate(table)}
    null = len(table)
    labels = np.array([null if held else index_of[g]
                       for g, held in zip(data.group.tolist(), data.heldout.tolist())], np.int64)
    group_names = data.class_names
    return replace(grids, labels=labels, class_names=tuple(c["name"] for c in table),
                   class_groups=tuple(group_names[c["group"]] for c in table))


def widen_generator(source: Path, table: list[dict], out: Path) -> None:
    """The 32-class generator with one class embedding per emoji, each its group's row."""
    exported = load_exported(source)
    weights, metadata = exported.model, exported_metadata(source)
    config = from_dict(GeneratorTraining, exported.config)
    old = weights[CLASS_EMBEDDING]  # [groups + 1, dim]: the last row is the null class
    if old.shape[0] != config.model.num_classes + 1:
        raise ValueError(f"{source}: {old.shape[0]} class rows for "
                         f"{config.model.num_classes} classes")
    groups = torch.tensor([c["group"] for c in table])
    weights[CLASS_EMBEDDING] = torch.cat([old[groups], old[-1:]]).contiguous()
    widened = replace(config, model=replace(config.model, num_classes=len(table)))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out), metadata={**metadata,
                                           "training_config": json.dumps(asdict(widened))})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("data/emoji64_extra.npz"))
    p.add_argument("--codes", type=Path, default=Path("data/emoji64_extra_codes_gen2.npz"))
    p.add_argument("--out-codes", type=Path, default=Path("data/emoji64_extra_codes_gen3.npz"))
    p.add_argument("--packages", type=Path, default=Path("data/npm"),
                   help="folder holding emoji-datasource's tarball (emoji_data fetches it)")
    p.add_argument("--table", type=Path, default=TABLE)
    p.add_argument("--siblings", type=Path, default=SIBLINGS)
    p.add_argument("--widen", type=Path, help="a 32-class generator to warm-start from")
    p.add_argument("--widened", type=Path, default=Path("runs/gen3_start.safetensors"))
    a = p.parse_args(argv)
    data = EmojiDataset.load(a.data)
    catalogue = catalogue_entries(a.packages)
    table = build_table(data, catalogue)
    rows = ",\n".join(json.dumps(c, ensure_ascii=False) for c in table)  # a class per line
    a.table.write_text(f"[\n{rows}\n]\n")
    siblings = heldout_siblings(data, catalogue, table)
    a.siblings.write_text(json.dumps(siblings, indent=0) + "\n")
    relabel(TokenGrids.load(a.codes), data, table).save(a.out_codes)
    print(f"{len(table)} classes -> {a.table}; per-emoji labels -> {a.out_codes}")
    if a.widen is not None:
        widen_generator(a.widen, table, a.widened)
        print(f"{a.widen} widened to {len(table)} classes -> {a.widened}")


if __name__ == "__main__":
    main()
