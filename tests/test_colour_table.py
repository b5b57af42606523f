"""The per-code colour table: each code's mean patch colour as the decoder draws it, the preview
frames drawn from it, and the table kept on disk per tokenizer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from par_demo.checkpoints import load_tokenizer
from par_demo.classes import ASSETS
from par_demo.colour_table import (ColourTableConfig, ColourTables, _code_grids, cache_dir,
                                   measure_table)
from par_demo.models.vq import VQModel
from par_demo.presets import EMBEDDED
from par_demo.preview import MASK_DARK, MASK_LIGHT, colour_preview
from support import golden_vq_args, golden_weights

FULL = ColourTableConfig(grid=6, samples_per_code=6, max_patches=10_000)
TRAINED = ColourTableConfig(max_patches=4096)  # every one of the 1024 codes 4 times


@pytest.fixture(scope="module")
def tokenizer() -> VQModel:
    """The golden tiny VQ: random weights, so its patches are mostly context, not colour."""
    model = VQModel(golden_vq_args())
    model.load_state_dict(golden_weights("vq_tiny"), strict=False)
    return model.eval()


@pytest.fixture(scope="module")
def trained() -> VQModel:
    """The embedded model's trained tokenizer (1024 codes, 4 x 4 pixel patches)."""
    return load_tokenizer(EMBEDDED.tokenizer, ASSETS / EMBEDDED.tokenizer.weights.filename)


def decoded_patch_means(tokenizer: VQModel, grids_NGG: np.ndarray) -> np.ndarray:
    """[N, G, G, 3] mean colour (0..255) of each cell's patch, from the decoder's pictures."""
    f = tokenizer.args.downsample
    with torch.inference_mode():
        images = tokenizer.decode_codes(torch.as_tensor(grids_NGG)).clamp(-1, 1)
    pixels = ((images + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    N, G = grids_NGG.shape[:2]
    return pixels.reshape(N, G, f, G, f, 3).mean((2, 4))


def test_each_codes_colour_is_its_mean_patch_colour_in_the_decoded_grids(tokenizer):
    table = measure_table(tokenizer, FULL)
    grids = _code_grids(tokenizer.args.codebook_size, FULL)
    means = decoded_patch_means(tokenizer, grids).reshape(-1, 3)
    codes = grids.reshape(-1)
    assert np.bincount(codes).min() >= FULL.samples_per_code  # every code, in several contexts
    for code in range(tokenizer.args.codebook_size):
        assert np.abs(table[code] - means[codes == code].mean(0)).max() <= 0.5 + 1e-6


def test_the_preview_of_real_pictures_is_closer_to_the_decoder_than_their_average_colour(trained):
    """Held-out emoji's codes: measured 43 units of mean error against 56 for the pictures'
    average colour (random contexts wash a code's colour out; a code's mean over real pictures
    would do better, 16)."""
    table = measure_table(trained, TRAINED)
    grids = np.load(ASSETS / "heldout_codes.npz")["codes"][:64].reshape(-1, 16, 16)
    truth = decoded_patch_means(trained, grids.astype(np.int64))
    preview = table[grids].astype(np.float64)
    error = np.abs(preview - truth).mean()
    flat = np.abs(truth.mean((0, 1, 2)) - truth).mean()
    assert error < 0.85 * flat, (error, flat)


def test_codes_beyond_the_budget_are_fitted_from_their_code_vectors(trained):
    full = measure_table(trained, TRAINED).astype(np.float64)
    small = ColourTableConfig(samples_per_code=1, max_patches=512)  # half the codes
    covered = np.zeros(trained.args.codebook_size, bool)
    covered[_code_grids(trained.args.codebook_size, small).reshape(-1)] = True
    assert 0 < covered.sum() < len(covered)
    fitted = measure_table(trained, small).astype(np.float64)[~covered]
    error = np.abs(fitted - full[~covered]).mean()
    flat = np.abs(full.mean(0) - full[~covered]).mean()
    assert error < flat, (error, flat)


def test_the_preview_paints_each_cell_its_codes_colour_and_masks_pending_cells():
    table = np.arange(64 * 3, dtype=np.uint8).reshape(64, 3)
    tokens = np.array([[5, -1, 63, 0]])
    frame = colour_preview(table, tokens, grid=2, patch=4)[0]
    assert frame.shape == (8, 8, 3)
    assert (frame[:4, :4] == table[5]).all() and (frame[4:, :4] == table[63]).all()
    assert (frame[4:, 4:] == table[0]).all()
    assert set(np.unique(frame[:4, 4:])) == {MASK_DARK, MASK_LIGHT}


def test_a_table_is_measured_once_then_read_from_disk(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("PAR_CACHE", str(tmp_path))
    first = ColourTables(FULL).table(tokenizer)
    files = list(cache_dir().glob("*.npy"))
    assert len(files) == 1
    marked = first.copy()
    marked[0] = (1, 2, 3)  # a table read back, not measured again, shows the mark
    np.save(files[0], marked)
    assert np.array_equal(ColourTables(FULL).table(tokenizer), marked)
    np.save(files[0], marked[:10])  # the wrong shape: measured again
    assert np.array_equal(ColourTables(FULL).table(tokenizer), first)
