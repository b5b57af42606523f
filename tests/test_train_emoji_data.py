"""Building the emoji dataset from packages in the real emoji-datasource layout (tiny ones, made
by support.write_tiny_packages)."""
from pathlib import Path

import numpy as np
import pytest

from par_demo.train.emoji_data import (DataConfig, EmojiDataset, build_dataset, main,
                                       read_class_table)
# tiny_dataset: test_train_generator/evaluate/export still import it from here
from support import APPLE_RED, SUBCATEGORIES, tiny_dataset, write_tiny_packages  # noqa: F401


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
