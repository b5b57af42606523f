"""Write the shipping weights as safetensors: the generator, and the whole tokenizer (the app
decodes with its decoder; the encoder is there to tokenize a picture a visitor brings).

    python -m par_demo.train.export --tokenizer-run runs/tokenizer --generator-run runs/generator \\
        --out assets
    python -m par_demo.train.export --tokenizer-run runs/tokenizer_gen2 --tokenizer-only \\
        --out assets       # a tokenizer whose generator is still to be trained
    python -m par_demo.train.export --generator-run runs/generator_gen2 --generator-only \\
        --out assets       # a generator whose tokenizer is already exported

The trained architectures must equal one of the embedded generations (the generator with its
tokenizer) or, with --tokenizer-only, one of the tokenizer presets; each file goes under its
preset's file name and is read back through the app's own loader before this returns, so a file that is written loads.
Each file records its training step and config, so training can continue from it
(`generator --init-from`).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file

from par_demo.checkpoints import load_tokenizer, load_transformer
from par_demo.presets import TOKENIZERS, ModelPreset, TokenizerPreset, embedded_generation
from par_demo.models.transformer import Transformer
from par_demo.models.vq import VQModel
from par_demo.train.checkpoint import load_state, training_metadata
from par_demo.train.generator import load_trained_generator
from par_demo.train.tokenizer import load_trained_tokenizer


def export_tokenizer(model: VQModel, preset: TokenizerPreset, path: Path,
                     metadata: dict[str, str] | None = None) -> Path:
    if not model.args.with_encoder or replace(model.args, with_encoder=False) != preset.args:
        raise ValueError(f"the trained tokenizer {model.args} is not the {preset.name} preset "
                         f"{preset.args} with its encoder")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"preset": preset.name, **(metadata or {})})
    load_tokenizer(replace(preset, args=model.args), path)
    return path


def tokenizer_preset(model: VQModel) -> TokenizerPreset:
    """The tokenizer preset a trained tokenizer is (its architecture without the encoder)."""
    args = replace(model.args, with_encoder=False)
    for preset in TOKENIZERS.values():
        if preset.args == args:
            return preset
    raise ValueError(f"the trained tokenizer {model.args} is none of the presets "
                     f"{', '.join(TOKENIZERS)}")


def generator_preset(generator: Transformer, tokenizer: VQModel | None = None) -> ModelPreset:
    """The embedded generation a trained generator (and the tokenizer it goes with) are."""
    preset = embedded_generation(generator.args)
    tokenizer_args = None if tokenizer is None else replace(tokenizer.args, with_encoder=False)
    if tokenizer_args not in (None, preset.tokenizer.args):
        raise ValueError(f"the trained generator with tokenizer {tokenizer_args} is none of the "
                         f"embedded generations: {preset.name} goes with {preset.tokenizer.name}")
    return preset


def export_generator(model: Transformer, preset: ModelPreset, path: Path,
                     metadata: dict[str, str] | None = None) -> Path:
    if model.args != preset.args:
        raise ValueError(f"the trained generator {model.args} is not the {preset.name} preset "
                         f"{preset.args}")
    # fp32: 11 MB, and a later run continues from exactly these weights
    state = {k: v.detach().to("cpu", torch.float32).contiguous()
             for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"preset": preset.name, **(metadata or {})})
    load_transformer(preset, path)
    return path


def export_all(tokenizer: VQModel, generator: Transformer, out: Path,
               tokenizer_metadata: dict[str, str] | None = None,
               generator_metadata: dict[str, str] | None = None) -> list[Path]:
    preset = generator_preset(generator, tokenizer)
    return [export_tokenizer(tokenizer, preset.tokenizer, out / preset.tokenizer.weights.filename,
                             tokenizer_metadata),
            export_generator(generator, preset, out / preset.weights.filename,
                             generator_metadata)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tokenizer-run", type=Path, default=Path("runs/tokenizer"))
    p.add_argument("--generator-run", type=Path, default=Path("runs/generator"))
    p.add_argument("--out", type=Path, default=Path("runs/export"))
    p.add_argument("--tokenizer-only", action="store_true",
                   help="export the tokenizer alone, under its preset's file name")
    p.add_argument("--generator-only", action="store_true",
                   help="export the generator alone, under its generation's file name")
    a = p.parse_args(argv)
    if a.generator_only and a.tokenizer_only:
        p.error("--generator-only and --tokenizer-only exclude each other")
    if a.generator_only:
        generator = load_trained_generator(a.generator_run)
        preset = generator_preset(generator)
        paths = [export_generator(generator, preset, a.out / preset.weights.filename,
                                  training_metadata(load_state(a.generator_run)))]
    elif a.tokenizer_only:
        tokenizer = load_trained_tokenizer(a.tokenizer_run)
        preset = tokenizer_preset(tokenizer)
        paths = [export_tokenizer(tokenizer, preset, a.out / preset.weights.filename,
                                  training_metadata(load_state(a.tokenizer_run)))]
    else:
        paths = export_all(load_trained_tokenizer(a.tokenizer_run),
                           load_trained_generator(a.generator_run), a.out,
                           tokenizer_metadata=training_metadata(load_state(a.tokenizer_run)),
                           generator_metadata=training_metadata(load_state(a.generator_run)))
    for path in paths:
        print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)")

if __name__ == "__main__":
    main()
