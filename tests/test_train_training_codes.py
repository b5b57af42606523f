"""The shipped training codes' builder: training rows only, as drawn, and a lossless file."""
import numpy as np

from par_demo.train.codes import TokenGrids
from par_demo.train.training_codes import training_codes
from par_demo.training_codes import TrainingCodes


def test_only_training_pictures_as_drawn_are_kept_and_read_back(tmp_path):
    g = np.random.default_rng(0)
    codes = g.integers(0, 1024, (6, 2, 4, 4)).astype(np.int16)  # each picture, then its mirror
    heldout = np.array([False, True, False, False, True, False])
    grids = TokenGrids(codes=codes, labels=np.zeros(6, dtype=np.int64), heldout=heldout,
                       codebook_size=1024, class_names=("one",))
    kept = training_codes(grids, "abc", "codes.npz")
    np.testing.assert_array_equal(kept.codes, codes[~heldout, 0])
    kept.save(tmp_path / "t.npz")
    back = TrainingCodes.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.codes, kept.codes)
    assert (back.codebook_size, back.tokenizer_sha256, back.source) == (1024, "abc", "codes.npz")
