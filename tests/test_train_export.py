"""Shipping weights: safetensors that the app's own loader reads, decoder-only tokenizer."""
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from par_demo.checkpoints import load_tokenizer, load_transformer
from par_demo.presets import (EMBEDDED, EMBEDDED_GEN1, EMOJI_TOKENIZER_GEN1,
                              EMOJI_TOKENIZER_GEN2, ModelPreset)
from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.train.export import export_all, export_generator, export_tokenizer


@pytest.fixture(scope="module")
def trained_like():
    """Models of the shipping architectures, as training builds them (encoder included)."""
    torch.manual_seed(0)
    tokenizer = VQModel(replace(EMBEDDED.tokenizer.args, with_encoder=True)).eval()
    generator = Transformer(EMBEDDED.args).init_weights(torch.Generator().manual_seed(0)).eval()
    torch.nn.init.normal_(generator.output.weight, std=0.02)
    return tokenizer, generator


def test_exports_load_through_the_app_loader_and_ship_the_encoder(trained_like, tmp_path):
    tokenizer, generator = trained_like
    tok_path, gen_path = export_all(tokenizer, generator, tmp_path,
                                    tokenizer_metadata={"training_step": "7"})
    assert tok_path.name == EMBEDDED.tokenizer.weights.filename
    assert gen_path.name == EMBEDDED.weights.filename
    keys = load_file(str(tok_path)).keys()
    assert any(k.startswith("encoder.") for k in keys) and any(k.startswith("decoder.") for k in keys)
    with safe_open(str(tok_path), "pt") as f:
        assert f.metadata()["training_step"] == "7"
    loaded_tok = load_tokenizer(EMBEDDED.tokenizer, tok_path)
    assert not hasattr(loaded_tok, "encoder")  # the app decodes only
    loaded_gen = load_transformer(EMBEDDED, gen_path)
    codes = torch.randint(EMBEDDED.tokenizer.args.codebook_size, (1, 16, 16))
    with torch.no_grad():
        torch.testing.assert_close(loaded_tok.decode_codes(codes), tokenizer.decode_codes(codes))
    for k, v in generator.state_dict().items():
        assert torch.equal(loaded_gen.state_dict()[k], v), k
    with_encoder = replace(EMBEDDED.tokenizer, args=tokenizer.args)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(load_tokenizer(with_encoder, tok_path).encode(image).codes,
                                   tokenizer.encode(image).codes, rtol=0, atol=0)
    assert (tok_path.stat().st_size + gen_path.stat().st_size) < 40e6


def test_refuses_an_architecture_other_than_the_preset(trained_like, tmp_path):
    tokenizer, generator = trained_like
    other = ModelPreset(**{**EMBEDDED.__dict__, "args": replace(EMBEDDED.args, n_layer=1)})
    with pytest.raises(ValueError, match="not the"):
        export_generator(generator, other, tmp_path / "g.safetensors")
    small = replace(EMBEDDED.tokenizer, args=replace(EMBEDDED.tokenizer.args, codebook_size=64))
    with pytest.raises(ValueError, match="not the"):
        export_tokenizer(tokenizer, small, tmp_path / "t.safetensors")


@pytest.mark.parametrize("preset", [EMOJI_TOKENIZER_GEN1, EMOJI_TOKENIZER_GEN2],
                         ids=lambda p: p.name)
def test_each_tokenizer_generation_exports_under_its_preset_and_is_read_back(preset, tmp_path):
    from par_demo.train.codes import exported_preset
    from par_demo.train.export import tokenizer_preset

    torch.manual_seed(1)
    model = VQModel(replace(preset.args, with_encoder=True)).eval()
    assert tokenizer_preset(model) is preset
    path = export_tokenizer(model, preset, tmp_path / preset.weights.filename)
    assert exported_preset(path) is preset  # codes.py encodes with the right one
    other = VQModel(replace(preset.args, codebook_size=64, with_encoder=True))
    with pytest.raises(ValueError, match="none of the presets"):
        tokenizer_preset(other)


def test_the_first_generation_pair_exports_under_its_own_names_and_mixed_pairs_are_refused(
        trained_like, tmp_path):
    tokenizer, generator = trained_like
    gen1_tokenizer = VQModel(replace(EMOJI_TOKENIZER_GEN1.args, with_encoder=True)).eval()
    gen1_generator = Transformer(EMBEDDED_GEN1.args).init_weights(
        torch.Generator().manual_seed(0)).eval()
    tok_path, gen_path = export_all(gen1_tokenizer, gen1_generator, tmp_path)
    assert tok_path == tmp_path / "gen1" / "emoji_tokenizer.safetensors"
    assert gen_path == tmp_path / "gen1" / "emoji_generator.safetensors"
    assert load_transformer(EMBEDDED_GEN1, gen_path).args.vocab_size == 512
    with pytest.raises(ValueError, match="none of the embedded generations"):
        export_all(tokenizer, gen1_generator, tmp_path / "mixed")  # 512-code model, 1024 codes
    with pytest.raises(ValueError, match="none of the embedded generations"):
        export_all(gen1_tokenizer, generator, tmp_path / "mixed")


def test_the_cli_exports_a_generator_alone_under_its_generation(tmp_path):
    from dataclasses import asdict

    from par_demo.train.checkpoint import TrainingState, exported_metadata, save_state
    from par_demo.train.config import GeneratorTraining
    from par_demo.train.export import main

    model = Transformer(EMBEDDED.args).init_weights(torch.Generator().manual_seed(0))
    run = tmp_path / "generator"
    save_state(run, TrainingState(1500, asdict(GeneratorTraining(model=EMBEDDED.args)),
                                  model.state_dict(), {}, {}))
    main(["--generator-run", str(run), "--generator-only", "--out", str(tmp_path / "assets")])
    path = tmp_path / "assets" / EMBEDDED.weights.filename
    assert exported_metadata(path)["training_step"] == "1500"
    assert exported_metadata(path)["preset"] == EMBEDDED.name
    loaded = load_transformer(EMBEDDED, path)
    assert torch.equal(loaded.state_dict()["output.weight"], model.state_dict()["output.weight"])
