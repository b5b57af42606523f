"""Deepening an exported generator keeps every logit until training moves the new blocks."""
import json
from dataclasses import asdict

import pytest
import torch
from safetensors.torch import load_file, save_file

from par_demo.models.transformer import Transformer
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.sampler import SamplingConfig, generate
from par_demo.train.checkpoint import exported_metadata
from par_demo.train.config import GeneratorTraining, from_dict, profile
from par_demo.train.grow import main

CONFIG = profile("toy").generator


@pytest.fixture
def exported(tmp_path):
    model = Transformer(CONFIG.model).init_weights(torch.Generator().manual_seed(1))
    for p in model.parameters():  # a trained model's output head is not zero
        p.data.normal_(0, 0.05)
    path = tmp_path / "gen.safetensors"
    save_file(model.state_dict(), str(path), metadata={
        "training_step": "700", "training_config": json.dumps(asdict(CONFIG))})
    return model.eval(), path


def test_deeper_model_draws_the_same_tokens_and_records_its_config(exported, tmp_path):
    shallow, source = exported
    out = tmp_path / "deep.safetensors"
    main(["--source", str(source), "--layers", str(CONFIG.model.n_layer + 2), "--out", str(out)])
    config = from_dict(GeneratorTraining, json.loads(exported_metadata(out)["training_config"]))
    assert config.model.n_layer == CONFIG.model.n_layer + 2
    assert int(exported_metadata(out)["training_step"]) == 700
    deep = Transformer(config.model)
    deep.load_state_dict(load_file(str(out)))  # strict: every new block's tensor is there
    assert deep.layers[-1].attention.wo.weight.abs().sum() == 0
    assert deep.layers[-1].attention.wqkv.weight.abs().sum() > 0  # trainable once wo moves
    schedule = build_schedule(ScheduleSpec(grid=CONFIG.model.grid, order="distant", parallel=4))
    sampling = SamplingConfig(cfg_scale=2.0, seed=3)
    a = generate(shallow, schedule, [0, 1], sampling)
    b = generate(deep.eval(), schedule, [0, 1], sampling)
    assert torch.equal(torch.as_tensor(a.tokens), torch.as_tensor(b.tokens))


def test_refuses_a_model_no_deeper(exported, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--source", str(exported[1]), "--layers", str(CONFIG.model.n_layer),
              "--out", str(tmp_path / "x.safetensors")])
    assert "--layers" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
