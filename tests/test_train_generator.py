"""Generator training at toy scale: it learns, checkpoints safely, resumes exactly, and the
trained weights run every app ordering through the real sampler."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from par_demo.models.vq import VQModel
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.sampler import SamplingConfig, generate
from par_demo.train.checkpoint import checkpoint_path, load_state, training_metadata
from par_demo.train.codes import encode_dataset
from par_demo.train.config import EVAL_SCHEDULES, profile
from par_demo.train.generator import load_trained_generator, main, train_generator
from par_demo.train.runtime import MetricsLog, OptimConfig, learning_rate
from test_train_emoji_data import tiny_dataset

CONFIG = profile("toy").generator


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """Token grids of the tiny dataset under a seeded, untrained toy tokenizer."""
    data = tiny_dataset(tmp_path_factory.mktemp("data"))
    torch.manual_seed(0)
    return encode_dataset(VQModel(profile("toy").tokenizer.vq).eval(), data)


def test_trains_with_a_weights_only_checkpoint_and_logs_heldout_losses(grids, tmp_path):
    run = tmp_path / "gen"
    model = train_generator(CONFIG, grids, run, "cpu", quiet=True)
    raw = torch.load(checkpoint_path(run), weights_only=True)
    assert raw["step"] == CONFIG.steps and "target_embeddings.weight" in raw["model"]
    records = MetricsLog(run).read()
    assert [r["step"] for r in records if "loss" in r] == list(range(1, CONFIG.steps + 1))
    heldout = [r for r in records if any(k.startswith("heldout") for k in r)]
    assert heldout and "heldout distant 4x, without initial tokens" in heldout[-1]
    reloaded = load_trained_generator(run)
    for k, v in model.state_dict().items():
        assert torch.equal(v, reloaded.state_dict()[k]), k


def test_resuming_a_chunked_run_equals_the_uninterrupted_run(grids, tmp_path):
    straight = train_generator(CONFIG, grids, tmp_path / "a", "cpu", quiet=True)
    train_generator(CONFIG, grids, tmp_path / "b", "cpu", chunk_steps=1, quiet=True)
    assert load_state(tmp_path / "b").step == 1
    resumed = train_generator(CONFIG, grids, tmp_path / "b", "cpu", resume=True, quiet=True)
    for k, v in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0, msg=k)
    a, b = load_state(tmp_path / "a").optimizer, load_state(tmp_path / "b").optimizer
    for key in a["state"]:
        torch.testing.assert_close(a["state"][key]["exp_avg_sq"], b["state"][key]["exp_avg_sq"],
                                   rtol=0, atol=0)


def test_loss_falls_on_the_schedule_mixture(grids, tmp_path):
    config = replace(CONFIG, steps=40, batch_size=8, log_every=10, save_every=40,
                     optim=OptimConfig(lr=3e-3, warmup_steps=5))
    train_generator(config, grids, tmp_path / "fit", "cpu", quiet=True)
    losses = [r["loss"] for r in MetricsLog(tmp_path / "fit").read() if "loss" in r]
    assert losses[-1] < losses[0] - 0.5, losses


def test_one_set_of_trained_weights_runs_every_app_ordering(grids, tmp_path):
    model = train_generator(CONFIG, grids, tmp_path / "run", "cpu", quiet=True)
    for spec in EVAL_SCHEDULES + (ScheduleSpec(grid=16, order="raster", parallel=16),):
        result = generate(model, build_schedule(spec), [0, 5], SamplingConfig(cfg_scale=2.0))
        assert result.tokens.shape == (2, 16, 16)
        assert ((result.tokens >= 0) & (result.tokens < grids.codebook_size)).all()
        assert len(result.step_seconds) == build_schedule(spec).num_steps


def test_refuses_data_that_does_not_fit_the_model(grids, tmp_path):
    wrong_vocab = replace(CONFIG, model=replace(CONFIG.model, vocab_size=64))
    with pytest.raises(ValueError, match="vocab_size"):
        train_generator(wrong_vocab, grids, tmp_path / "x", "cpu", quiet=True)
    official = replace(CONFIG, model=replace(CONFIG.model, target_aware=False))
    with pytest.raises(ValueError, match="target_aware"):
        train_generator(official, grids, tmp_path / "y", "cpu", quiet=True)


def test_cli_trains_in_chunks(grids, tmp_path):
    grids.save(tmp_path / "codes.npz")
    args = ["--codes", str(tmp_path / "codes.npz"), "--run", str(tmp_path / "cli"),
            "--profile", "toy", "--device", "cpu"]
    main(args + ["--chunk-steps", "3"])
    assert load_state(tmp_path / "cli").step == 3
    # how long and how often it saves may change on resume; an evaluation comes with each save
    main(args + ["--resume", "--steps", str(CONFIG.steps + 2), "--save-every", "5"])
    assert load_state(tmp_path / "cli").step == CONFIG.steps + 2
    records = MetricsLog(tmp_path / "cli").read()
    assert np.isfinite([r["loss"] for r in records if "loss" in r]).all()
    evaluated = [r["step"] for r in records if "heldout raster 1x" in r]
    assert evaluated == [2, 5, 6], evaluated  # the profile's every 2, then every 5 and the end
    # the learning rate is what is trained, so a resume may not change it
    with pytest.raises(ValueError, match="optim"):
        main(args + ["--resume", "--steps", str(CONFIG.steps + 4), "--lr", "1e-2"])


def test_cli_learning_rate_overrides_the_profiles_peak(grids, tmp_path):
    grids.save(tmp_path / "codes.npz")
    args = ["--codes", str(tmp_path / "codes.npz"), "--profile", "toy", "--device", "cpu"]
    main(args + ["--run", str(tmp_path / "lr"), "--lr", "2e-3"])
    rates = [r["lr"] for r in MetricsLog(tmp_path / "lr").read() if "lr" in r]
    assert max(rates) == pytest.approx(2e-3)
    assert load_state(tmp_path / "lr").config["optim"]["lr"] == 2e-3


def test_mirrored_grids_are_used_except_for_unflipped_classes(grids, tmp_path):
    def weights(name, **changes):
        model = train_generator(replace(CONFIG, steps=2, **changes), grids, tmp_path / name,
                                "cpu", quiet=True)
        return model.state_dict()["tok_embeddings.weight"]

    never = weights("never", flip_p=0.0)
    assert not torch.equal(weights("always", flip_p=1.0), never)
    assert torch.equal(weights("none_flippable", flip_p=1.0,
                               unflipped_classes=grids.class_names), never)


def test_training_continues_from_exported_weights_with_a_rewarm(grids, tmp_path):
    base = replace(CONFIG, optim=replace(CONFIG.optim, warmup_steps=2))
    model = train_generator(base, grids, tmp_path / "first", "cpu", quiet=True)
    shipped = tmp_path / "shipped.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(shipped),
              metadata=training_metadata(load_state(tmp_path / "first")))
    longer = replace(base, steps=base.steps + 2)
    train_generator(longer, grids, tmp_path / "next", "cpu", quiet=True, init_from=shipped,
                    chunk_steps=0)
    assert load_state(tmp_path / "next").step == base.steps
    for k, v in model.state_dict().items():
        assert torch.equal(load_state(tmp_path / "next").model[k], v), k
    continued = train_generator(longer, grids, tmp_path / "next", "cpu", resume=True, quiet=True)
    state = load_state(tmp_path / "next")
    assert state.step == longer.steps and int(state.extra["rewarm_from"]) == base.steps
    assert not torch.equal(continued.state_dict()["output.weight"],
                           model.state_dict()["output.weight"])
    lrs = [r["lr"] for r in MetricsLog(tmp_path / "next").read() if "lr" in r]
    # fresh optimizer moments: the first continued step runs at half the scheduled rate
    assert lrs[0] == pytest.approx(learning_rate(base.optim, base.steps, longer.steps) / 2)
    assert lrs[1] == pytest.approx(learning_rate(base.optim, base.steps + 1, longer.steps))
    with pytest.raises(ValueError, match="another config"):
        train_generator(replace(base, class_dropout_p=0.5), grids, tmp_path / "other", "cpu",
                        quiet=True, init_from=shipped)


def test_the_dropout_override_trains_without_dropout_and_logs_the_fit_of_training_pictures(
        grids, tmp_path):
    model = train_generator(replace(CONFIG, dropout=0.0), grids, tmp_path / "run", "cpu",
                            quiet=True)
    assert model.tok_dropout.p == 0.0 and all(
        layer.attention.resid_dropout.p == layer.feed_forward.ffn_dropout.p == 0.0
        for layer in model.layers)
    fit = [r for r in MetricsLog(tmp_path / "run").read()
           if "train distant 4x, with initial tokens" in r]
    assert fit and 0 < fit[-1]["train distant 4x, with initial tokens"] < 20
    # what is exported and run is the architecture, which has no say on training's dropout
    assert load_trained_generator(tmp_path / "run").args == CONFIG.model
