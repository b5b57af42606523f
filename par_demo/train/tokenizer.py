"""Train the emoji VQ tokenizer (the VQ-16 module code at emoji size) and report its quality.

    python -m par_demo.train.tokenizer --data data/emoji64.npz --run runs/tokenizer \\
        --profile gpu --device cuda [--resume] [--minutes 9]

Loss: MSE + L1 reconstruction plus the codebook and commitment terms. Codes left unused for
`restart_every` steps are re-seeded from current encoder outputs, which keeps the codebook in use
(no pretrained network exists here, so there is no perceptual or adversarial loss). Reports
held-out PSNR and codebook use, and writes reconstructions.png.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from par_demo.models.vq import VQModel
from par_demo.preview import to_uint8
from par_demo.train.checkpoint import TrainingState, check_same_config, load_state, save_state
from par_demo.train.config import TokenizerTraining, from_dict, profile
from par_demo.train.emoji_data import EmojiDataset
from par_demo.train.metrics import CodebookUse, codebook_use, psnr
from par_demo.train.runtime import (Budget, MetricsLog, adamw, configure_device, learning_rate,
                                    set_learning_rate, step_generator, training_arguments)


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


def train_tokenizer(config: TokenizerTraining, data: EmojiDataset, run: Path, device,
                    resume: bool = False, minutes: float | None = None,
                    chunk_steps: int | None = None,
                    quiet: bool = False) -> VQModel:
    """Train until config.steps or the time budget; checkpoints in `run` (resumable)."""
    device = configure_device(str(device))
    if not config.vq.with_encoder:
        raise ValueError("training needs the encoder: "
                         "use dataclasses.replace(args, with_encoder=True)")
    torch.manual_seed(config.seed)  # the module initialisers draw from the global generator
    model = VQModel(config.vq).to(device).train()
    optimizer = adamw(model, config.optim)
    counts = torch.zeros(config.vq.codebook_size, dtype=torch.long, device=device)
    step = 0
    saved = load_state(run) if resume else None
    if saved is not None:
        check_same_config(saved.config, asdict(config))
        model.load_state_dict(saved.model)
        optimizer.load_state_dict(saved.optimizer)
        counts, step = saved.extra["code_counts"].to(device), saved.step

    log, budget = MetricsLog(run, quiet), Budget(minutes)
    last_step = config.steps if chunk_steps is None else min(config.steps, step + chunk_steps)
    train_images = torch.as_tensor(data.images[data.indices("train")], device=device)
    heldout_images = data.images[data.indices("heldout")]

    def checkpoint():
        save_state(run, TrainingState(step, asdict(config), model.state_dict(),
                                      optimizer.state_dict(), {"code_counts": counts.cpu()}))

    clock = time.perf_counter()
    while step < last_step and not budget.spent():
        g = step_generator(config.seed, step)
        set_learning_rate(optimizer, learning_rate(config.optim, step, config.steps))
        batch = torch.randint(len(train_images), (config.batch_size,), generator=g)
        x = random_flip(to_model_range(train_images[batch.to(device)], device), config.flip_p, g)
        z = model.quant_conv(model.encoder(x))
        q = model.quantize(z)
        recon = model.decode(q.z_q)
        mse, l1 = F.mse_loss(recon, x), F.l1_loss(recon, x)
        loss = (config.mse_weight * mse + config.l1_weight * l1
                + q.codebook_loss + q.commit_loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        optimizer.step()
        counts += torch.bincount(q.codes.reshape(-1), minlength=len(counts))
        step += 1

        restarted = 0
        if config.restart_every and step % config.restart_every == 0:
            z_flat = F.normalize(z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1]), dim=-1)
            restarted = restart_dead_codes(model, z_flat, counts, g)
            counts.zero_()
        if step % config.log_every == 0 or step == config.steps:
            now = time.perf_counter()
            log.write(step=step, loss=loss.item(), mse=mse.item(), l1=l1.item(),
                      commit=q.commit_loss.item(), restarted=restarted,
                      lr=optimizer.param_groups[0]["lr"], seconds=now - clock)
            clock = now
        if step % config.eval_every == 0 or step == config.steps:
            report, recon_np = evaluate_tokenizer(model, heldout_images)
            log.write(step=step, heldout_psnr=report.psnr_db, codes_used=report.codebook.used,
                      perplexity=report.codebook.perplexity)
            save_reconstructions(run / "reconstructions.png", heldout_images, recon_np)
        if step % config.save_every == 0:
            checkpoint()
    checkpoint()
    return model.eval()


def load_trained_tokenizer(run: Path, device="cpu") -> VQModel:
    """The tokenizer of a run folder's checkpoint."""
    state = load_state(run)
    if state is None:
        raise FileNotFoundError(f"{run} holds no tokenizer checkpoint")
    config = from_dict(TokenizerTraining, state.config)
    model = VQModel(config.vq)
    model.load_state_dict(state.model)
    return model.to(device).eval()


def main(argv: list[str] | None = None) -> None:
    a = training_arguments(__doc__, "--data", "data/emoji64.npz", "runs/tokenizer", argv)
    config = profile(a.profile).tokenizer
    if a.steps is not None:
        config = replace(config, steps=a.steps)
    data = EmojiDataset.load(a.data)
    model = train_tokenizer(config, data, a.run, a.device, a.resume, a.minutes, a.chunk_steps)
    report, _ = evaluate_tokenizer(model, data.images[data.indices("heldout")])
    print(f"held-out PSNR {report.psnr_db:.2f} dB; codes used {report.codebook.used}/"
          f"{report.codebook.size}, perplexity {report.codebook.perplexity:.1f}")

if __name__ == "__main__":
    main()
