"""Encoding the dataset into token grids, as drawn and mirrored."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from par_demo.checkpoints import load_tokenizer
from par_demo.classes import ASSETS
from par_demo.presets import EMBEDDED
from par_demo.train.codes import TokenGrids, encode_dataset, main
from par_demo.train.config import profile
from par_demo.train.tokenizer import encode_images, train_tokenizer
from support import tiny_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("codes")
    data = tiny_dataset(root)
    config = profile("toy").tokenizer
    model = train_tokenizer(config, data, root / "tok", "cpu", chunk_steps=1, quiet=True)
    return root, data, model


def test_grids_hold_the_codes_of_each_image_and_of_its_mirror_image(trained, tmp_path):
    _, data, model = trained
    grids = encode_dataset(model, data, batch=16)
    assert grids.codes.shape == (len(data), 2, 16, 16) and grids.codes.dtype == np.int16
    assert grids.codebook_size == model.args.codebook_size
    assert np.array_equal(grids.codes[:, 0], encode_images(model, data.images, 64))
    mirrored = np.ascontiguousarray(data.images[:, :, ::-1])
    assert np.array_equal(grids.codes[:, 1], encode_images(model, mirrored, 64))
    assert not np.array_equal(grids.codes[:, 0], grids.codes[:, 1])
    grids.save(tmp_path / "codes.npz")
    loaded = TokenGrids.load(tmp_path / "codes.npz")
    assert np.array_equal(loaded.codes, grids.codes)
    assert np.array_equal(loaded.indices("heldout"), data.indices("heldout"))
    assert loaded.class_names == data.class_names and loaded.grid == 16


def test_cli_encodes_with_a_trained_run(trained, tmp_path):
    root, data, model = trained
    data.save(tmp_path / "emoji.npz")
    main(["--tokenizer-run", str(root / "tok"), "--data", str(tmp_path / "emoji.npz"),
          "--out", str(tmp_path / "codes.npz"), "--device", "cpu"])
    with torch.no_grad():
        expected = encode_dataset(model, data)
    assert np.array_equal(TokenGrids.load(tmp_path / "codes.npz").codes, expected.codes)


def test_cli_encodes_with_the_shipped_tokenizer(trained, tmp_path):
    _, data, _ = trained
    data.save(tmp_path / "emoji.npz")
    shipped = ASSETS / EMBEDDED.tokenizer.weights.filename
    main(["--tokenizer-weights", str(shipped), "--data", str(tmp_path / "emoji.npz"),
          "--out", str(tmp_path / "codes.npz"), "--device", "cpu"])
    with_encoder = replace(EMBEDDED.tokenizer,
                           args=replace(EMBEDDED.tokenizer.args, with_encoder=True))
    expected = encode_dataset(load_tokenizer(with_encoder, shipped), data)
    codes = TokenGrids.load(tmp_path / "codes.npz").codes
    assert np.array_equal(codes, expected.codes)
    assert len(np.unique(codes)) > 32  # a trained codebook, not a few collapsed codes
