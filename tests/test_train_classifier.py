"""The evaluation classifier at toy scale: trains, reports held-out accuracy, resumes exactly."""
import numpy as np
import pytest
import torch

from par_demo.train.checkpoint import checkpoint_path, load_state
from par_demo.train.classifier import (heldout_accuracy, load_trained_classifier, main, predict,
                                       random_shift, random_zoom, train_classifier)
from par_demo.train.config import profile
from par_demo.train.runtime import MetricsLog
from support import tiny_dataset

CONFIG = profile("toy").classifier


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"))


def test_trains_and_reports_heldout_accuracy(data, tmp_path):
    model = train_classifier(CONFIG, data, tmp_path / "clf", "cpu", quiet=True)
    assert torch.load(checkpoint_path(tmp_path / "clf"), weights_only=True)["step"] == CONFIG.steps
    logged = [r for r in MetricsLog(tmp_path / "clf").read() if "heldout_accuracy" in r][-1]
    assert logged["heldout_accuracy"] == pytest.approx(heldout_accuracy(model, data))
    features, pred = predict(model, data.images)
    assert features.shape == (len(data), CONFIG.feature_dim)
    assert pred.shape == (len(data),) and pred.max() < data.num_classes
    reloaded = load_trained_classifier(tmp_path / "clf", data.num_classes)
    assert np.allclose(predict(reloaded, data.images)[0], features)


def test_resuming_a_chunked_run_equals_the_uninterrupted_run(data, tmp_path):
    straight = train_classifier(CONFIG, data, tmp_path / "a", "cpu", quiet=True)
    train_classifier(CONFIG, data, tmp_path / "b", "cpu", chunk_steps=2, quiet=True)
    assert load_state(tmp_path / "b").step == 2
    resumed = train_classifier(CONFIG, data, tmp_path / "b", "cpu", resume=True, quiet=True)
    for k, v in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0, msg=k)


def test_random_shift_moves_content_and_fills_with_white():
    x = -torch.ones(3, 3, 8, 8)
    shifted = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape
    assert ((shifted == -1) | (shifted == 1)).all()
    assert (shifted == -1).sum(dim=(1, 2, 3)).min() >= 3 * 6 * 6


def test_random_zoom_scales_about_the_centre_and_fills_with_white():
    x = -torch.ones(64, 3, 32, 32)
    zoomed = random_zoom(x, 0.2, torch.Generator().manual_seed(0))
    dark = (zoomed < 0).float().mean(dim=(1, 2, 3))
    assert torch.allclose(zoomed[:, :, 14:18, 14:18], x[:, :, 14:18, 14:18])  # the centre stays
    assert (dark < 0.99).any() and (dark == 1).any()  # some shrink (white border), some grow
    assert dark.min() >= (1 / 1.2) ** 2 - 0.05
    assert torch.equal(random_zoom(x, 0.0, torch.Generator().manual_seed(0)), x)


def test_predictions_do_not_depend_on_mirroring(data, tmp_path):
    model = train_classifier(CONFIG, data, tmp_path / "clf", "cpu", quiet=True)
    features, pred = predict(model, data.images)
    mirrored_features, mirrored_pred = predict(model, data.images[:, :, ::-1].copy())
    np.testing.assert_allclose(mirrored_features, features, rtol=1e-5, atol=1e-6)
    assert (mirrored_pred == pred).all()


def test_cli(data, tmp_path):
    data.save(tmp_path / "emoji.npz")
    main(["--data", str(tmp_path / "emoji.npz"), "--run", str(tmp_path / "cli"),
          "--profile", "toy", "--device", "cpu"])
    assert load_state(tmp_path / "cli").step == CONFIG.steps
