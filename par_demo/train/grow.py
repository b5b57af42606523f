"""Deepen an exported generator: new blocks on top that start as the identity.

    python -m par_demo.train.grow --source assets/emoji_generator.safetensors --layers 4 \\
        --out runs/gen3_deep_start.safetensors

Each new block's two output projections (attention `wo`, feed-forward `w2`) start at zero, so the
residual stream, and with it every logit, is the source model's until training moves them; the
rest of the block is drawn as the model's own initialisation. Training then continues from the
file with `--start-from`.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import torch
from safetensors.torch import save_file

from par_demo.models.transformer import Transformer
from par_demo.train.checkpoint import exported_metadata, load_exported
from par_demo.train.config import GeneratorTraining, from_dict

ZERO_STARTED = ("attention.wo.weight", "feed_forward.w2.weight")


def deepen(weights: dict[str, torch.Tensor], config: GeneratorTraining, n_layer: int,
           seed: int = 0) -> tuple[dict[str, torch.Tensor], GeneratorTraining]:
    """The weights and config of the model with blocks added on top up to `n_layer`."""
    old = config.model.n_layer
    if n_layer <= old:
        raise ValueError(f"--layers {n_layer} must exceed the source's {old} layers")
    deeper = replace(config, model=replace(config.model, n_layer=n_layer))
    fresh = Transformer(deeper.model).init_weights(torch.Generator().manual_seed(seed)).state_dict()
    grown = dict(weights)
    for i in range(old, n_layer):
        for name, tensor in fresh.items():
            if name.startswith(f"layers.{i}."):
                zero = name.endswith(ZERO_STARTED)
                grown[name] = torch.zeros_like(tensor) if zero else tensor.contiguous()
    return grown, deeper


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--source", type=Path, required=True, help="an exported generator file")
    p.add_argument("--layers", type=int, required=True, help="the deeper model's layer count")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    exported = load_exported(a.source)
    config = from_dict(GeneratorTraining, exported.config)
    try:
        grown, deeper = deepen(exported.model, config, a.layers)
    except ValueError as e:
        p.error(str(e))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(grown, str(a.out), metadata={**exported_metadata(a.source),
                                           "training_config": json.dumps(asdict(deeper))})
    print(f"{a.out}: {config.model.n_layer} -> {a.layers} layers")


if __name__ == "__main__":
    main()
