"""Tokenizer training at toy scale: it runs, reports, checkpoints safely and resumes exactly."""
from dataclasses import replace

import pytest
import torch

from par_demo.models.vq import VQArgs, VQModel
from par_demo.train.checkpoint import checkpoint_path, load_state
from par_demo.train.config import profile
from par_demo.train.runtime import MetricsLog
from par_demo.train.tokenizer import (evaluate_tokenizer, load_trained_tokenizer, main,
                                      restart_dead_codes, train_tokenizer)
from support import tiny_dataset

CONFIG = profile("toy").tokenizer


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"))


def test_trains_reports_and_writes_a_weights_only_checkpoint(data, tmp_path):
    run = tmp_path / "tok"
    model = train_tokenizer(CONFIG, data, run, "cpu", quiet=True)
    raw = torch.load(checkpoint_path(run), weights_only=True)
    assert raw["step"] == CONFIG.steps and "encoder.conv_in.weight" in raw["model"]
    records = MetricsLog(run).read()
    assert [r["step"] for r in records if "loss" in r] == list(range(1, CONFIG.steps + 1))
    final = [r for r in records if "heldout_psnr" in r][-1]
    assert final["step"] == CONFIG.steps and final["heldout_psnr"] > 0
    assert (run / "reconstructions.png").is_file()
    report, recon = evaluate_tokenizer(model, data.images[data.indices("heldout")])
    assert recon.shape == data.images[data.indices("heldout")].shape
    assert 1 <= report.codebook.used <= CONFIG.vq.codebook_size
    reloaded = load_trained_tokenizer(run)
    for k, v in model.state_dict().items():
        assert torch.equal(v, reloaded.state_dict()[k]), k


def test_resuming_a_chunked_run_equals_the_uninterrupted_run(data, tmp_path):
    straight = train_tokenizer(CONFIG, data, tmp_path / "a", "cpu", quiet=True)
    train_tokenizer(CONFIG, data, tmp_path / "b", "cpu", chunk_steps=3, quiet=True)
    assert load_state(tmp_path / "b").step == 3
    resumed = train_tokenizer(CONFIG, data, tmp_path / "b", "cpu", resume=True, quiet=True)
    assert load_state(tmp_path / "b").step == CONFIG.steps
    for k, v in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert torch.equal(load_state(tmp_path / "a").extra["code_counts"],
                       load_state(tmp_path / "b").extra["code_counts"])


def test_resume_refuses_another_config(data, tmp_path):
    train_tokenizer(CONFIG, data, tmp_path / "c", "cpu", chunk_steps=1, quiet=True)
    with pytest.raises(ValueError, match="l1_weight"):
        train_tokenizer(replace(CONFIG, l1_weight=0.0), data, tmp_path / "c", "cpu",
                        resume=True, quiet=True)


def test_dead_codes_are_reseeded_from_encoder_outputs():
    torch.manual_seed(0)
    model = VQModel(VQArgs(codebook_size=8, codebook_embed_dim=4, z_channels=32, ch=32,
                           encoder_ch_mult=(1, 1), decoder_ch_mult=(1, 1), num_res_blocks=0))
    before = model.quantize.embedding.weight.detach().clone()
    z = torch.nn.functional.normalize(torch.randn(20, 4), dim=-1)
    counts = torch.tensor([3, 0, 1, 0, 5, 2, 0, 1])
    assert restart_dead_codes(model, z, counts, torch.Generator().manual_seed(0)) == 3
    after = model.quantize.embedding.weight.detach()
    for k in (1, 3, 6):
        assert any(torch.equal(after[k], row) for row in z), k
    for k in (0, 2, 4, 5, 7):
        assert torch.equal(after[k], before[k]), k


def test_cli_trains_and_resumes(data, tmp_path):
    path = tmp_path / "emoji.npz"
    data.save(path)
    run = tmp_path / "cli"
    main(["--data", str(path), "--run", str(run), "--profile", "toy", "--device", "cpu",
          "--chunk-steps", "2"])
    assert load_state(run).step == 2
    main(["--data", str(path), "--run", str(run), "--profile", "toy", "--device", "cpu",
          "--resume"])
    assert load_state(run).step == CONFIG.steps


def test_a_decoder_only_phase_keeps_the_codes_and_trains_the_decoder(data, tmp_path):
    from safetensors.torch import save_file

    from par_demo.train.checkpoint import training_metadata
    from par_demo.train.tokenizer import encode_images

    first = train_tokenizer(CONFIG, data, tmp_path / "first", "cpu", quiet=True)
    exported = tmp_path / "tokenizer.safetensors"
    save_file({k: v.contiguous() for k, v in first.state_dict().items()}, str(exported),
              metadata=training_metadata(load_state(tmp_path / "first")))
    phase = replace(CONFIG, decoder_only=True, restart_every=0, steps=3,
                    optim=replace(CONFIG.optim, lr=1e-2))
    tuned = train_tokenizer(phase, data, tmp_path / "decoder", "cpu", quiet=True,
                            start_from=exported)
    assert load_state(tmp_path / "decoder").step == phase.steps  # its own schedule, from 0
    before, after = first.state_dict(), tuned.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"decoder"} or changed == {"decoder", "post_quant_conv"}
    images = data.images[:8]
    assert (encode_images(first, images, 8) == encode_images(tuned, images, 8)).all()
    with pytest.raises(ValueError, match="restart_every=0"):
        train_tokenizer(replace(phase, restart_every=2), data, tmp_path / "bad", "cpu",
                        quiet=True, start_from=exported)
    with pytest.raises(ValueError, match="not both"):
        train_tokenizer(phase, data, tmp_path / "both", "cpu", quiet=True,
                        start_from=exported, init_from=exported)
