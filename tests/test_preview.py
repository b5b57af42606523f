import numpy as np
import torch

from par_demo.models.vq import VQArgs, VQModel
from par_demo.preview import (MASK_DARK, MASK_LIGHT, FrameClock, decode_tokens, enlarge,
                              entropy_image, fill_pending, masked_preview, token_grid_image)


def tiny_tokenizer() -> VQModel:
    torch.manual_seed(0)
    return VQModel(VQArgs(codebook_size=16, codebook_embed_dim=4, z_channels=32, ch=32,
                          encoder_ch_mult=(1, 2), decoder_ch_mult=(1, 2), num_res_blocks=1,
                          with_encoder=False)).eval()


def test_pending_cells_take_their_nearest_known_neighbour():
    tokens = np.full((1, 16), -1)
    tokens[0, 0], tokens[0, 15] = 3, 9
    filled = fill_pending(tokens, 4).reshape(4, 4)
    assert filled[0, 1] == 3 and filled[3, 2] == 9 and filled[0, 0] == 3
    assert (fill_pending(np.full((1, 16), -1), 4) == 0).all()


def test_masked_preview_masks_exactly_the_pending_cells():
    tokenizer = tiny_tokenizer()
    tokens = np.random.default_rng(0).integers(0, 16, (1, 16))
    full = decode_tokens(tokenizer, tokens, 4)
    assert np.array_equal(masked_preview(tokenizer, tokens, 4), full)
    partial = tokens.copy()
    partial[0, [5, 10]] = -1
    preview = masked_preview(tokenizer, partial, 4)[0]
    for cell in (5, 10):
        r, c = divmod(cell, 4)
        patch = preview[r * 2:(r + 1) * 2, c * 2:(c + 1) * 2]
        assert set(np.unique(patch)) <= {MASK_DARK, MASK_LIGHT}
    assert preview.shape == (8, 8, 3) and preview.dtype == np.uint8


def test_token_grid_and_entropy_images():
    tokens = np.array([0, 1, -1, 1])
    grid = token_grid_image(tokens, 2, 4, cell_px=3)
    assert grid.shape == (6, 6, 3)
    assert (grid[0, 3] == grid[3, 3]).all() and (grid[3, 0] == 40).all()
    entropy = entropy_image(np.array([0.0, np.log(4), np.nan, 1.0]), 2, 4, cell_px=2)
    assert entropy[0, 0].sum() < entropy[0, 2].sum()
    assert (entropy[2, 0] == 128).all()


def test_enlarge_is_nearest_neighbour():
    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    big = enlarge(img, 8)
    assert big.shape == (8, 8, 3) and (big[:4, :4] == img[0, 0]).all()


def test_the_frame_clock_follows_the_display_rate_not_the_step_rate():
    now = [0.0]
    clock = FrameClock(interval=1 / 8, clock=lambda: now[0])
    shown = []
    for step in range(100):  # steps of 1/128 s (binary fractions: exact)
        now[0] = step / 128
        if clock.due(step, done=step == 99):
            shown.append(step)
    assert shown == [0, 16, 32, 48, 64, 80, 96, 99]  # one frame per 1/8 s, and the last


def test_a_slow_run_previews_every_step_once():
    now = [0.0]
    clock = FrameClock(interval=0.08, clock=lambda: now[0])
    due = []
    for step in range(5):
        now[0] = step * 0.2
        due.append(clock.due(step, done=step == 4))
    assert due == [True] * 5
