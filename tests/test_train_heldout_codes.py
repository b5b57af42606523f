"""Building the shipped held-out token grids from the dataset and a tokenizer file."""
from dataclasses import replace

import numpy as np

from par_demo.checkpoints import load_tokenizer
from par_demo.classes import ASSETS
from par_demo.heldout import HeldoutGrids, file_sha256
from par_demo.presets import EMBEDDED
from par_demo.train.heldout_codes import main
from par_demo.train.tokenizer import encode_images
from support import tiny_dataset


def test_the_script_encodes_the_first_heldout_pictures_of_each_class(tmp_path):
    data = tiny_dataset(tmp_path)
    data.save(tmp_path / "emoji.npz")
    shipped = ASSETS / EMBEDDED.tokenizer.weights.filename
    main(["--data", str(tmp_path / "emoji.npz"), "--tokenizer-weights", str(shipped),
          "--per-class", "1", "--out", str(tmp_path / "heldout.npz")])
    grids = HeldoutGrids.load(tmp_path / "heldout.npz")
    heldout = data.indices("heldout")
    first = [heldout[data.labels[heldout] == c][0] for c in np.unique(data.labels[heldout])]
    with_encoder = replace(EMBEDDED.tokenizer,
                           args=replace(EMBEDDED.tokenizer.args, with_encoder=True))
    tokenizer = load_tokenizer(with_encoder, shipped)
    assert np.array_equal(grids.codes, encode_images(tokenizer, data.images[first], 64))
    assert np.array_equal(grids.labels, data.labels[first])
    assert list(grids.group) == list(data.group[first])
    assert grids.tokenizer_sha256 == file_sha256(shipped) and grids.grid == 16
    main(["--data", str(tmp_path / "emoji.npz"), "--tokenizer-weights", str(shipped),
          "--per-class", "0", "--out", str(tmp_path / "all.npz")])
    assert len(HeldoutGrids.load(tmp_path / "all.npz")) == len(heldout)
