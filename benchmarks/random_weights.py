"""Seeded random weights in the presets' architectures, for the tests and the benchmarks (a step
takes the same time whatever the weights); never used by the app."""
from __future__ import annotations

import torch

from par_demo.checkpoints import LoadedModel
from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.presets import ModelPreset


def random_model(preset: ModelPreset, device="cpu", seed: int = 0) -> LoadedModel:
    """The preset's generator and tokenizer with seeded random weights."""
    generator = torch.Generator().manual_seed(seed)
    transformer = Transformer(preset.args).init_weights(generator)
    # random init would leave logits at exactly zero: give the head some signal
    torch.nn.init.normal_(transformer.output.weight, std=0.02, generator=generator)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        tokenizer = VQModel(preset.tokenizer.args)
    return LoadedModel(preset, transformer.to(device).eval(), tokenizer.to(device).eval())


def random_transformer(preset: ModelPreset, device, dtype) -> Transformer:
    """A released-size generator built on the device directly (no CPU copy of billions of
    weights); values do not change the time, non-zero ones keep softmax honest."""
    with torch.device("meta"):
        model = Transformer(preset.args)
    model = model.to_empty(device=device).to(dtype)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.02)
    return model.eval()
