"""The emoji dataset: 64 px Google/Noto and Twitter/Twemoji images with merged-subcategory classes.

Built from the npm packages alone (emoji-datasource for the catalogue, -google and -twitter for the
images) into one compressed .npz that can travel to a GPU machine:

    python -m par_demo.train.emoji_data --out data/emoji64.npz [--packages DIR]
    python -m par_demo.train.emoji_data --out data/emoji64_extra.npz --extra fluent-flat

`--extra` appends other openly licensed drawings of the same emoji (par_demo.train.extra_emoji;
rendering their SVG needs `pip install cairosvg`) to the training split only: the rows without
extras stay byte-identical and first, and emoji of the held-out split get no extra drawing.

The Apple and Facebook image sets are not openly licensed and are never read. Images are
composited on white. The held-out split is chosen per class and grouped by emoji, so an emoji
drawn in the other style (or in another skin tone) never sits on the other side of the split.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import tarfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from par_demo.classes import ASSETS
from par_demo.train.extra_emoji import EXTRA_SETS, extra_drawings, extra_tarball, fetch_extra_sets

VERSION = "16.0.0"
CATALOGUE_PACKAGE = "emoji-datasource"
STYLES = ("google", "twitter")  # Apache-2.0 and CC-BY-4.0; apple and facebook stay out
LICENSES = {"google": "Apache-2.0 (Noto Emoji)", "twitter": "CC-BY-4.0 (Twemoji)"}
IMAGE_SIZE = 64
EXCLUDED_SUBCATEGORIES = ("skin-tone",)  # colour swatches, not pictures


@dataclass(frozen=True)
class DataConfig:
    heldout_fraction: float = 0.1  # of each class's emoji
    include_skin_tones: bool = False  # the recoloured people and hands of skin_variations
    extra: tuple[str, ...] = ()  # names of EXTRA_SETS whose drawings join the training split


@dataclass(frozen=True)
class EmojiImage:
    group: str  # the base emoji's code points: skin-tone variants share their base's group
    image: str  # file name under img/<style>/64/
    subcategory: str
    sort_order: int
    styles: tuple[str, ...]  # which of STYLES draw it


def split_rows(heldout: np.ndarray, split: str) -> np.ndarray:
    """Rows of the "train" or "heldout" split, given the held-out flags."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be train or heldout, got {split!r}")
    return np.flatnonzero(heldout if split == "heldout" else ~heldout)


@dataclass
class EmojiDataset:
    images: np.ndarray  # [N, 64, 64, 3] uint8 on white
    labels: np.ndarray  # [N] class index
    heldout: np.ndarray  # [N] bool
    group: np.ndarray  # [N] str, the emoji (skin tones grouped with their base)
    style: np.ndarray  # [N] str, google | twitter | an extra set's style
    class_names: tuple[str, ...]
    meta: dict

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def indices(self, split: str) -> np.ndarray:
        """Rows of the "train" or "heldout" split."""
        return split_rows(self.heldout, split)

    def class_counts(self, split: str) -> np.ndarray:
        return np.bincount(self.labels[self.indices(split)], minlength=self.num_classes)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path, images=self.images, labels=self.labels, heldout=self.heldout,
            group=self.group, style=self.style, class_names=np.array(self.class_names),
            meta=np.array(json.dumps(self.meta)))

    @classmethod
    def load(cls, path: Path) -> "EmojiDataset":
        with np.load(path, allow_pickle=False) as f:
            return cls(images=f["images"], labels=f["labels"].astype(np.int64),
                       heldout=f["heldout"], group=f["group"], style=f["style"],
                       class_names=tuple(str(n) for n in f["class_names"]),
                       meta=json.loads(str(f["meta"])))


def read_class_table(path: Path = ASSETS / "emoji_classes.json") -> list[dict]:
    return json.loads(path.read_text())


def tarball(folder: Path, package: str) -> Path:
    return folder / f"{package}-{VERSION}.tgz"


def fetch_packages(folder: Path) -> None:
    """`npm pack` the three packages into `folder` unless their tarballs are already there."""
    packages = [CATALOGUE_PACKAGE] + [f"{CATALOGUE_PACKAGE}-{s}" for s in STYLES]
    missing = [p for p in packages if not tarball(folder, p).is_file()]
    if not missing:
        return
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "pack", *(f"{p}@{VERSION}" for p in missing),
                    "--pack-destination", str(folder)], check=True, stdout=subprocess.DEVNULL)


def read_member(path: Path, name: str) -> bytes:
    with tarfile.open(path, "r:gz") as tar:
        member = tar.extractfile(f"package/{name}")
        if member is None:
            raise FileNotFoundError(f"{name} is not a file in {path.name}")
        return member.read()


def catalogue_images(catalogue: list[dict], include_skin_tones: bool) -> list[EmojiImage]:
    out = []
    for entry in catalogue:
        if entry["subcategory"] in EXCLUDED_SUBCATEGORIES:
            continue
        variants = [entry]
        if include_skin_tones:
            variants += list((entry.get("skin_variations") or {}).values())
        for v in variants:
            styles = tuple(s for s in STYLES if v.get(f"has_img_{s}"))
            if styles:
                out.append(EmojiImage(entry["unified"], v["image"], entry["subcategory"],
                                      int(entry["sort_order"]), styles))
    return out


def read_pngs(path: Path, style: str, names: set[str]) -> dict[str, bytes]:
    """The PNG bytes of `names` under img/<style>/64/ of one image package (a single pass)."""
    prefix = f"package/img/{style}/{IMAGE_SIZE}/"
    found = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            if member.isfile() and member.name.startswith(prefix):
                name = member.name[len(prefix):]
                if name in names:
                    found[name] = tar.extractfile(member).read()
    return found


def composite_on_white(png: bytes) -> np.ndarray:
    """[64, 64, 3] uint8: the RGBA image over a white background."""
    rgba = Image.open(io.BytesIO(png)).convert("RGBA")
    if rgba.size != (IMAGE_SIZE, IMAGE_SIZE):
        rgba = rgba.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))


def stable_rank(group: str) -> str:
    """A platform-independent pseudo-random key, so the split never depends on hash seeds."""
    return hashlib.sha256(group.encode()).hexdigest()


def heldout_groups(groups_by_class: dict[int, set[str]], fraction: float) -> set[str]:
    """Per class, round(fraction * emoji) emoji (at least one when the class has two or more)."""
    out: set[str] = set()
    for groups in groups_by_class.values():
        if len(groups) < 2:
            continue
        count = max(1, round(fraction * len(groups)))
        out.update(sorted(groups, key=stable_rank)[:count])
    return out


def build_dataset(packages: Path, class_table: list[dict], config: DataConfig) -> EmojiDataset:
    dataset = build_base_dataset(packages, class_table, config)
    for name in config.extra:
        dataset = append_extra_set(dataset, packages, name)
    return dataset


def build_base_dataset(packages: Path, class_table: list[dict],
                       config: DataConfig) -> EmojiDataset:
    catalogue = json.loads(read_member(tarball(packages, CATALOGUE_PACKAGE), "emoji.json"))
    class_of = {sub: i for i, c in enumerate(class_table) for sub in c["subcategories"]}
    items = catalogue_images(catalogue, config.include_skin_tones)
    unknown = sorted({it.subcategory for it in items} - set(class_of))
    if unknown:
        raise ValueError(f"subcategories missing from the class table: {', '.join(unknown)}")
    items.sort(key=lambda it: (class_of[it.subcategory], it.sort_order, it.image))

    pngs = {s: read_pngs(tarball(packages, f"{CATALOGUE_PACKAGE}-{s}"), s,
                         {it.image for it in items if s in it.styles}) for s in STYLES}
    rows = [(it, s) for it in items for s in it.styles if it.image in pngs[s]]
    labels = np.array([class_of[it.subcategory] for it, _ in rows], dtype=np.int64)
    group = np.array([it.group for it, _ in rows])
    groups_by_class: dict[int, set[str]] = {}
    for g, c in zip(group, labels):
        groups_by_class.setdefault(int(c), set()).add(str(g))
    held = heldout_groups(groups_by_class, config.heldout_fraction)
    return EmojiDataset(
        images=np.stack([composite_on_white(pngs[s][it.image]) for it, s in rows]),
        labels=labels,
        heldout=np.array([g in held for g in group], dtype=bool),
        group=group,
        style=np.array([s for _, s in rows]),
        class_names=tuple(c["name"] for c in class_table),
        meta={"source": f"emoji-datasource {VERSION}", "licenses": LICENSES,
              "config": asdict(config)},
    )


def append_extra_set(ds: EmojiDataset, packages: Path, name: str) -> EmojiDataset:
    """`ds` with one row per training emoji that the extra set draws, appended in dataset order.
    Held-out emoji get none: not in training (leakage), nor held out (figures stay comparable)."""
    extra = EXTRA_SETS[name]
    train_groups = list(dict.fromkeys(ds.group[ds.indices("train")].tolist()))
    label_of = dict(zip(ds.group.tolist(), ds.labels.tolist()))
    pngs = extra_drawings(extra_tarball(packages, extra), extra, train_groups, IMAGE_SIZE)
    groups = list(pngs)
    images = np.array([composite_on_white(png) for png in pngs.values()], dtype=np.uint8)
    return EmojiDataset(
        images=np.concatenate([ds.images, images.reshape(-1, *ds.images.shape[1:])]),
        labels=np.concatenate([ds.labels, np.array([label_of[g] for g in groups], np.int64)]),
        heldout=np.concatenate([ds.heldout, np.zeros(len(groups), dtype=bool)]),
        group=np.concatenate([ds.group, np.array(groups, dtype=str)]),
        style=np.concatenate([ds.style, np.full(len(groups), extra.style)]),
        class_names=ds.class_names,
        meta={**ds.meta, "licenses": {**ds.meta["licenses"], extra.style: extra.license},
              "extra": {**ds.meta.get("extra", {}), extra.style: {
                  "package": f"{extra.package}@{extra.version}", "emoji": len(groups)}}},
    )


def summary(ds: EmojiDataset) -> str:
    lines = [f"{len(ds)} images, {ds.num_classes} classes, "
             f"{len(np.unique(ds.group))} emoji, styles {dict(Counter(ds.style.tolist()))}"]
    for split in ("train", "heldout"):
        counts = ds.class_counts(split)
        lines.append(f"{split}: {counts.sum()} images, per class min {counts.min()} "
                     f"({ds.class_names[counts.argmin()]}), max {counts.max()} "
                     f"({ds.class_names[counts.argmax()]})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("data/emoji64.npz"))
    p.add_argument("--packages", type=Path, default=Path("data/npm"),
                   help="folder holding the npm tarballs; missing ones are fetched with npm pack")
    p.add_argument("--classes", type=Path, default=ASSETS / "emoji_classes.json")
    p.add_argument("--heldout-fraction", type=float, default=DataConfig.heldout_fraction)
    p.add_argument("--skin-tones", action="store_true", help="add the skin-tone variants")
    p.add_argument("--extra", nargs="+", default=[], choices=sorted(EXTRA_SETS),
                   help="extra drawing sets for the training split (needs cairosvg)")
    a = p.parse_args(argv)
    fetch_packages(a.packages)
    fetch_extra_sets(a.packages, [EXTRA_SETS[name] for name in a.extra])
    config = DataConfig(heldout_fraction=a.heldout_fraction, include_skin_tones=a.skin_tones,
                        extra=tuple(a.extra))
    dataset = build_dataset(a.packages, read_class_table(a.classes), config)
    dataset.save(a.out)
    print(summary(dataset))
    print(f"-> {a.out} ({a.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
