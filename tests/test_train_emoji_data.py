"""Building the emoji dataset from packages in the real emoji-datasource layout.

`write_tiny_packages` is also the data source of the other test_train_* files: npm-style
tarballs (package/emoji.json, package/img/<style>/64/*.png) holding a few dozen small emoji.
"""
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from par_demo.train.emoji_data import (DataConfig, EmojiDataset, build_dataset, main,
                                       read_class_table)

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
                            "sort_order": 10 * s + k, "has_img_google": True,
                            # one emoji without a Twitter drawing
                            "has_img_twitter": not (s == 0 and k == 0),
                            "has_img_apple": True})
    hand = {"unified": "1F44B", "image": "1f44b.png", "subcategory": "hand-fingers-open",
            "sort_order": 99, "has_img_google": True, "has_img_twitter": True,
            "skin_variations": {tone: {"unified": f"1F44B-{tone}",
                                       "image": f"1f44b-{tone.lower()}.png",
                                       "has_img_google": True, "has_img_twitter": True}
                                for tone in ("1F3FB", "1F3FF")}}
    swatch = {"unified": "1F3FB", "image": "1f3fb.png", "subcategory": "skin-tone",
              "sort_order": 100, "has_img_google": True, "has_img_twitter": True}
    return entries + [hand, swatch]


def _all_images(catalogue: list[dict]) -> list[str]:
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
    names = _all_images(catalogue)
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


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> Path:
    return write_tiny_packages(tmp_path_factory.mktemp("npm"))


def test_builds_google_and_twitter_images_on_white_with_merged_classes(packages):
    ds = build_dataset(packages, read_class_table(), DataConfig())
    table = read_class_table()
    class_of = {sub: i for i, c in enumerate(table) for sub in c["subcategories"]}
    # 4 subcategories x 5 emoji x 2 styles, less one Twitter drawing, plus the hand twice
    assert len(ds) == 4 * 5 * 2 - 1 + 2
    assert ds.images.shape[1:] == (64, 64, 3) and ds.images.dtype == np.uint8
    assert ds.num_classes == len(table)
    assert set(ds.style.tolist()) == {"google", "twitter"}
    expected = {class_of[s] for s in SUBCATEGORIES} | {class_of["hand-fingers-open"]}
    assert set(ds.labels.tolist()) == expected
    assert (ds.images[:, 0, 0] == 255).all(), "transparent corners become white"
    red = (ds.images == np.array(APPLE_RED, dtype=np.uint8)).all(-1)
    assert not red.any(), "no Apple image may enter the dataset"
    assert "1F3FB" not in set(ds.group.tolist()), "skin-tone swatches are not pictures"


def test_skin_tones_are_optional_and_grouped_with_their_base_emoji(packages):
    with_tones = build_dataset(packages, read_class_table(), DataConfig(include_skin_tones=True))
    assert len(with_tones) == 4 * 5 * 2 - 1 + 2 * 3
    assert (with_tones.group == "1F44B").sum() == 6


def test_heldout_split_is_grouped_by_emoji_per_class_and_deterministic(packages):
    ds = build_dataset(packages, read_class_table(), DataConfig(heldout_fraction=0.2))
    held, train = set(ds.group[ds.heldout]), set(ds.group[~ds.heldout])
    assert held and not held & train, "both styles of an emoji sit on the same side"
    for c in np.unique(ds.labels):
        groups = set(ds.group[ds.labels == c])
        expected = round(0.2 * len(groups)) if len(groups) >= 2 else 0
        assert len(groups & held) == max(expected, 1 if len(groups) >= 2 else 0)
    again = build_dataset(packages, read_class_table(), DataConfig(heldout_fraction=0.2))
    assert np.array_equal(ds.images, again.images) and np.array_equal(ds.heldout, again.heldout)


def test_cli_writes_a_compact_file_that_loads_back(packages, tmp_path):
    out = tmp_path / "emoji.npz"
    main(["--out", str(out), "--packages", str(packages)])
    loaded = EmojiDataset.load(out)
    built = build_dataset(packages, read_class_table(), DataConfig())
    assert np.array_equal(loaded.images, built.images)
    assert np.array_equal(loaded.labels, built.labels)
    assert loaded.class_names == built.class_names
    assert loaded.meta["licenses"]["google"].startswith("Apache-2.0")


def test_a_subcategory_missing_from_the_taxonomy_is_an_error(packages):
    table = [c for c in read_class_table() if "animal-mammal" not in c["subcategories"]]
    with pytest.raises(ValueError, match="animal-mammal"):
        build_dataset(packages, table, DataConfig())
