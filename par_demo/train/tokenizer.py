"""Train the emoji VQ tokenizer (the VQ-16 module code at emoji size) and report its quality.

    python -m par_demo.train.tokenizer --data data/emoji64.npz --run runs/tokenizer \\
        --profile gpu --device cuda [--resume] [--minutes 9]
    python -m par_demo.train.tokenizer --profile cpu-gen2-decoder --run runs/decoder_gen2 \\
        --start-from assets/emoji_tokenizer.safetensors   # the decoder alone

Loss: MSE + L1 reconstruction plus the codebook and commitment terms. Codes left unused for
`restart_every` steps are re-seeded from current encoder outputs, which keeps the codebook in use
(no pretrained network exists here, so there is no perceptual or adversarial loss). Reports
held-out PSNR and codebook use, and writes reconstructions.png. A decoder-only config freezes the
encoder and the codebook, so every code (and a generator trained on the codes) stays valid.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from par_demo.models.vq import VQModel
from par_demo.preview import to_uint8
from par_demo.train.config import TokenizerTraining
from par_demo.train.emoji_data import EmojiDataset
from par_demo.train.loop import Stage, command_line, load_trained, train
from par_demo.train.metrics import CodebookUse, codebook_use, psnr


def to_model_range(images_NHW3: np.ndarray | torch.Tensor, device) -> torch.Tensor:
    """uint8 [N, H, W, 3] to float [N, 3, H, W] in [-1, 1]."""
    x = torch.as_tensor(images_NHW3, device=device)
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def random_flip(x_B3HW: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x_B3HW.shape[0], generator=generator) < p
    return torch.where(flip.to(x_B3HW.device)[:, None, None, None], x_B3HW.flip(-1), x_B3HW)


def restart_dead_codes(model: VQModel, z_NC: torch.Tensor, counts_K: torch.Tensor,
                       generator: torch.Generator) -> int:
    """Point every code with zero count at a random encoder output of this batch."""
    dead = torch.nonzero(counts_K == 0).flatten()
    if dead.numel() == 0:
        return 0
    pick = torch.randint(z_NC.shape[0], (dead.numel(),), generator=generator).to(z_NC.device)
    with torch.no_grad():
        model.quantize.embedding.weight[dead] = z_NC[pick]
    return int(dead.numel())


@dataclass(frozen=True)
class TokenizerReport:
    psnr_db: float  # held-out, mean per image
    codebook: CodebookUse  # on the held-out codes


@torch.inference_mode()
def encode_images(model: VQModel, images_NHW3: np.ndarray, batch: int) -> np.ndarray:
    device = next(model.parameters()).device
    out = [model.encode(to_model_range(images_NHW3[i:i + batch], device)).codes.cpu()
           for i in range(0, len(images_NHW3), batch)]
    return torch.cat(out).numpy()


@torch.inference_mode()
def decode_codes(model: VQModel, codes_NHW: np.ndarray, batch: int) -> np.ndarray:
    device = next(model.parameters()).device
    return np.concatenate([to_uint8(model.decode_codes(torch.as_tensor(codes_NHW[i:i + batch],
                                                                       device=device)))
                           for i in range(0, len(codes_NHW), batch)])


def evaluate_tokenizer(model: VQModel, images_NHW3: np.ndarray, batch: int = 64):
    """The report and the reconstructions of `images_NHW3`."""
    was_training = model.training
    model.eval()
    codes = encode_images(model, images_NHW3, batch)
    recon = decode_codes(model, codes, batch)
    model.train(was_training)
    return TokenizerReport(psnr(recon, images_NHW3),
                           codebook_use(codes, model.args.codebook_size)), recon


def save_reconstructions(path: Path, originals: np.ndarray, recon: np.ndarray, count=16) -> None:
    """Originals above their reconstructions."""
    top = np.concatenate(list(originals[:count]), axis=1)
    bottom = np.concatenate(list(recon[:count]), axis=1)
    Image.fromarray(np.concatenate([top, bottom], axis=0)).save(path)


class TokenizerStage(Stage):
    """Reconstruction, codebook and commitment losses; codes unused for `restart_every` steps
    are re-seeded after the step."""

    def __init__(self, config: TokenizerTraining, data: EmojiDataset, run: Path, device):
        if not config.vq.with_encoder:
            raise ValueError("training needs the encoder: "
                             "use dataclasses.replace(args, with_encoder=True)")
        if config.decoder_only and config.restart_every:
            raise ValueError("a decoder-only phase keeps the codebook: set restart_every=0")
        self.config, self.run, self.device = config, run, device
        self.model = VQModel(config.vq)
        if config.decoder_only:
            for frozen in (self.model.encoder, self.model.quant_conv, self.model.quantize):
                frozen.requires_grad_(False)
        self.eval_every = config.eval_every
        self.counts = torch.zeros(config.vq.codebook_size, dtype=torch.long, device=device)
        self.train_images = torch.as_tensor(data.images[data.indices("train")], device=device)
        self.heldout_images = data.images[data.indices("heldout")]

    def loss(self, g: torch.Generator) -> dict[str, torch.Tensor]:
        c, model = self.config, self.model
        batch = torch.randint(len(self.train_images), (c.batch_size,), generator=g)
        x = to_model_range(self.train_images[batch.to(self.device)], self.device)
        x = random_flip(x, c.flip_p, g)
        with torch.set_grad_enabled(not c.decoder_only):
            z = model.quant_conv(model.encoder(x))
            q = model.quantize(z)
        recon = model.decode(q.z_q)
        mse, l1 = F.mse_loss(recon, x), F.l1_loss(recon, x)
        self.counts += torch.bincount(q.codes.reshape(-1), minlength=len(self.counts))
        self.z = z.detach()  # the restart after the step re-seeds codes from these
        reconstruction = c.mse_weight * mse + c.l1_weight * l1
        if c.decoder_only:
            return {"loss": reconstruction, "mse": mse, "l1": l1}
        return {"loss": reconstruction + q.codebook_loss + q.commit_loss,
                "mse": mse, "l1": l1, "commit": q.commit_loss}

    def after_step(self, step: int, g: torch.Generator) -> dict[str, float]:
        if not self.config.restart_every or step % self.config.restart_every:
            return {}
        z_flat = F.normalize(self.z.permute(0, 2, 3, 1).reshape(-1, self.z.shape[1]), dim=-1)
        restarted = restart_dead_codes(self.model, z_flat, self.counts, g)
        self.counts.zero_()
        return {"restarted": restarted}

    def evaluate(self) -> dict[str, float]:
        report, recon = evaluate_tokenizer(self.model, self.heldout_images)
        save_reconstructions(self.run / "reconstructions.png", self.heldout_images, recon)
        return {"heldout_psnr": report.psnr_db, "codes_used": report.codebook.used,
                "perplexity": report.codebook.perplexity}

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"code_counts": self.counts.cpu()}

    def load_extra_state(self, extra: dict[str, torch.Tensor]) -> None:
        if "code_counts" in extra:  # an exported file (--init-from) starts the counts afresh
            self.counts = extra["code_counts"].to(self.device)


def train_tokenizer(config: TokenizerTraining, data: EmojiDataset, run: Path, device,
                    resume: bool = False, minutes: float | None = None,
                    chunk_steps: int | None = None, quiet: bool = False,
                    init_from: Path | None = None, start_from: Path | None = None) -> VQModel:
    """Train until config.steps or the time budget; checkpoints in `run` (resumable), or
    continuing an exported file (`init_from`), or a new phase from its weights (`start_from`)."""
    return train(config, partial(TokenizerStage, config, data, run), run, device, resume,
                 minutes, chunk_steps, quiet, init_from, start_from)


def load_trained_tokenizer(run: Path, device="cpu") -> VQModel:
    """The tokenizer of a run folder's checkpoint."""
    return load_trained(run, "tokenizer", lambda config: VQModel(config.vq), device)


def main(argv: list[str] | None = None) -> None:
    a, config = command_line(__doc__, "tokenizer", "--data", "data/emoji64.npz", argv,
                             init_from=True)
    data = EmojiDataset.load(a.data)
    model = train_tokenizer(config, data, a.run, a.device, a.resume, a.minutes, a.chunk_steps,
                            init_from=a.init_from, start_from=a.start_from)
    report, _ = evaluate_tokenizer(model, data.images[data.indices("heldout")])
    print(f"held-out PSNR {report.psnr_db:.2f} dB; codes used {report.codebook.used}/"
          f"{report.codebook.size}, perplexity {report.codebook.perplexity:.1f}")

if __name__ == "__main__":
    main()
