"""The shipped embedded model: the app's loader reads it from assets/, every ordering the app
offers draws the requested class, and the shipped encoder tokenizes a picture back."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors import safe_open

from benchmarks.random_weights import random_model
from par_demo.checkpoints import load_tokenizer, weight_file
from par_demo.presets import EMBEDDED
from par_demo.preview import decode_tokens
from par_demo.sampler import generate
from par_demo.train.metrics import psnr
from par_demo.ui.machine import MODELS
from par_demo.ui.inputs import COMPARE_ORDERINGS
from support import smiling_face_score

SMILING_FACE = 0


@pytest.fixture(scope="module")
def loaded():
    return MODELS.get(EMBEDDED.name, "cpu")


def faces(loaded, key: str) -> np.ndarray:
    schedule = EMBEDDED.check(replace(COMPARE_ORDERINGS[key][1], grid=EMBEDDED.args.grid))
    result = generate(loaded.transformer, schedule, [SMILING_FACE] * 4,
                      replace(EMBEDDED.sampling, seed=0))
    return decode_tokens(loaded.tokenizer, result.tokens.reshape(4, -1), schedule.grid)


def test_the_shipped_files_record_their_training_run():
    for source in (EMBEDDED.weights, EMBEDDED.tokenizer.weights):
        with safe_open(str(weight_file(source, download=False)), "pt") as f:
            metadata = f.metadata()
        assert int(metadata["training_step"]) > 0 and '"optim"' in metadata["training_config"]


@pytest.mark.parametrize("key", list(COMPARE_ORDERINGS))
def test_every_app_ordering_draws_a_yellow_face_on_white(loaded, key):
    corner, yellow = smiling_face_score(faces(loaded, key))
    assert corner > 215, f"{key}: background {corner:.0f} is not white"
    assert yellow > 50, f"{key}: red - blue {yellow:.0f} of the central half is not yellow"


def test_random_weights_fail_the_same_check():
    corner, yellow = smiling_face_score(faces(random_model(EMBEDDED), "distant 4x"))
    assert corner <= 215 or yellow <= 50


def test_the_shipped_encoder_tokenizes_a_picture_back(loaded):
    images = faces(loaded, "raster 1x")
    with_encoder = replace(EMBEDDED.tokenizer,
                           args=replace(EMBEDDED.tokenizer.args, with_encoder=True))
    tokenizer = load_tokenizer(with_encoder, weight_file(EMBEDDED.tokenizer.weights, download=False))
    x = torch.as_tensor(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        codes = tokenizer.encode(x).codes
    again = decode_tokens(loaded.tokenizer, codes.reshape(len(images), -1), EMBEDDED.args.grid)
    assert psnr(again, images) > 20
