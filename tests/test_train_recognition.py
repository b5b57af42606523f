"""The recognisability check: a training picture's nearest neighbour is a drawing of its own
emoji, a shifted one is not necessarily, and the table says how samples were drawn."""
import numpy as np
import torch

from par_demo.sampling import SamplingConfig
from par_demo.train.classifier import EmojiClassifier
from par_demo.train.recognition import RecognitionResult, TrainingPictures, format_table
from support import tiny_dataset


def test_every_training_picture_is_nearest_to_a_drawing_of_its_own_emoji(tmp_path):
    data = tiny_dataset(tmp_path)
    torch.manual_seed(0)
    judge = EmojiClassifier(data.num_classes, width=8, feature_dim=16).eval()
    reference = TrainingPictures.of(data, judge)
    train = data.indices("train")
    _, by_pixels = reference.nearest_emoji(reference.raw_features, data.images[train])
    np.testing.assert_array_equal(by_pixels, data.group[train])
    shifted = np.roll(data.images[train], 16, axis=2)  # a quarter of the width to the right
    _, by_pixels = reference.nearest_emoji(reference.raw_features, shifted)
    assert (by_pixels != data.group[train]).any()


def test_the_table_names_the_sampling_that_made_it():
    result = RecognitionResult("distant 4x, with initial tokens", 67, 128, 0.25, 0.5, 0.5, 9.0)
    table = format_table([result], SamplingConfig(cfg_scale=2.0, temperature=0.9, top_p=0.8))
    assert "| distant 4x, with initial tokens | 67 | 25.0% | 50.0% | 50.0% | 9.00 |" in table
    assert "guidance 2.0, temperature 0.9, top-p 0.8." in table
    assert "top-k" not in table and "top-p" not in format_table([result], SamplingConfig())
