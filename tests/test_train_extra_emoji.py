"""Extra emoji drawings (an Iconify JSON set) joining the training split of the tiny emoji
packages: the rows without extras and the held-out split must not change."""
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from par_demo.train.emoji_data import (DataConfig, EmojiDataset, build_dataset, main,
                                       read_class_table)
from par_demo.train.extra_emoji import IconSet, code_key, match_groups, render_png
from support import tiny_catalogue, write_tiny_packages

FLUENT = ("fluent-flat",)
HELDOUT_FRACTION = 0.2  # one held-out emoji in each tiny class of five


def icon_colour(index: int) -> tuple[int, int, int]:
    return (10 + 7 * index, 200 - 5 * index, 60 + 3 * index)


def write_iconify_set(folder: Path) -> dict[str, tuple[int, int, int]]:
    """An Iconify package (icons.json + chars.json) in the tarball `npm pack` writes: a filled
    disc of its own colour for every tiny catalogue emoji, a skin-tone variant of the hand and a
    code point the catalogue lacks. Returns each emoji's colour."""
    colours, icons, chars = {}, {}, {}
    codes = [e["unified"] for e in tiny_catalogue()] + ["1F44B-1F3FB", "1F9FF"]
    for i, code in enumerate(codes):
        colours[code] = icon_colour(i)
        name = f"icon-{code.lower()}"
        icons[name] = {"body": '<circle cx="16" cy="16" r="13" fill="#%02x%02x%02x"/>'
                       % colours[code]}
        chars[code.lower()] = name
    files = {"icons.json": {"prefix": "tiny", "icons": icons, "width": 32, "height": 32},
             "chars.json": chars, "info.json": {"license": {"spdx": "MIT"}}}
    with tarfile.open(folder / "iconify-json-fluent-emoji-flat-1.2.6.tgz", "w:gz") as tar:
        for name, obj in files.items():
            data = json.dumps(obj).encode()
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return colours


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> tuple[Path, dict]:
    folder = write_tiny_packages(tmp_path_factory.mktemp("npm"))
    return folder, write_iconify_set(folder)


@pytest.fixture(scope="module")
def base_and_extra(packages) -> tuple[EmojiDataset, EmojiDataset]:
    folder, _ = packages
    base = build_dataset(folder, read_class_table(), DataConfig(heldout_fraction=HELDOUT_FRACTION))
    extra = build_dataset(folder, read_class_table(),
                          DataConfig(heldout_fraction=HELDOUT_FRACTION, extra=FLUENT))
    return base, extra


def test_rows_without_extras_stay_identical_and_first(base_and_extra):
    base, extra = base_and_extra
    n = len(base)
    assert len(extra) > n
    for field in ("images", "labels", "heldout", "group", "style"):
        assert np.array_equal(getattr(extra, field)[:n], getattr(base, field)), field
    assert extra.class_names == base.class_names


def test_heldout_split_is_unchanged(base_and_extra):
    base, extra = base_and_extra
    assert np.array_equal(extra.indices("heldout"), base.indices("heldout"))
    held = extra.indices("heldout")
    assert np.array_equal(extra.images[held], base.images[base.indices("heldout")])
    assert np.array_equal(extra.labels[held], base.labels[base.indices("heldout")])


def test_every_training_emoji_gets_one_extra_drawing_and_no_heldout_emoji_does(base_and_extra):
    base, extra = base_and_extra
    rows = np.flatnonzero(extra.style == "fluent-flat")
    assert np.array_equal(rows, np.arange(len(base), len(extra))), "appended after the others"
    added = extra.group[rows].tolist()
    train_groups = list(dict.fromkeys(base.group[base.indices("train")].tolist()))
    assert added == train_groups, "one per training emoji, in dataset order"
    assert not set(added) & set(base.group[base.heldout].tolist())
    assert not extra.heldout[rows].any()
    label_of = dict(zip(base.group.tolist(), base.labels.tolist()))
    assert extra.labels[rows].tolist() == [label_of[g] for g in added]
    assert "1F9FF" not in added, "icons of emoji outside the catalogue are not added"


def test_skin_tone_icons_are_not_added(packages, base_and_extra):
    folder, _ = packages
    _, extra = base_and_extra
    hand = (extra.group == "1F44B") & (extra.style == "fluent-flat")
    with_tones = build_dataset(folder, read_class_table(), DataConfig(
        heldout_fraction=HELDOUT_FRACTION, include_skin_tones=True, extra=FLUENT))
    tones_hand = (with_tones.group == "1F44B") & (with_tones.style == "fluent-flat")
    assert hand.sum() == tones_hand.sum() == 1


def test_extra_drawings_are_the_icons_rendered_on_white(packages, base_and_extra):
    _, colours = packages
    _, extra = base_and_extra
    rows = np.flatnonzero(extra.style == "fluent-flat")
    assert extra.images.shape[1:] == (64, 64, 3) and extra.images.dtype == np.uint8
    for row in rows:
        image = extra.images[row]
        assert (image[0, 0] == 255).all(), "transparent corners become white"
        assert tuple(image[32, 32]) == colours[str(extra.group[row])]


def test_code_points_match_with_or_without_the_variation_selector():
    assert code_key("2764-FE0F") == code_key("2764") == "2764"
    icons = IconSet(icons={"icons": {"red-heart": {"body": ""}}},
                    chars={"2764": "red-heart", "1f600": "no-such-icon"})
    assert match_groups(icons, ["2764-FE0F", "1F600", "1F601"]) == {"2764-FE0F": "red-heart"}


def test_a_missing_renderer_names_the_pip_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "cairosvg", None)  # what an environment without it raises
    with pytest.raises(ImportError, match="pip install cairosvg"):
        render_png('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>', 64)


def test_cli_records_the_extra_set_and_its_licence(packages, tmp_path):
    folder, _ = packages
    out = tmp_path / "emoji_extra.npz"
    main(["--out", str(out), "--packages", str(folder), "--extra", "fluent-flat"])
    loaded = EmojiDataset.load(out)
    assert loaded.meta["licenses"]["fluent-flat"].startswith("MIT")
    assert loaded.meta["licenses"]["google"].startswith("Apache-2.0")
    assert loaded.meta["config"]["extra"] == ["fluent-flat"]
    assert loaded.meta["extra"]["fluent-flat"]["package"] == "@iconify-json/fluent-emoji-flat@1.2.6"
    assert loaded.meta["extra"]["fluent-flat"]["emoji"] == (loaded.style == "fluent-flat").sum()
