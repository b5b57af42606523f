"""LlamaGen's VQ tokenizer (VQ-16 and smaller variants) in the official state-dict layout.

Convolutional encoder and decoder with GroupNorm, swish and single-head attention at the lowest
resolution; a codebook looked up after l2 normalisation. Images are in [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class VQArgs:
    codebook_size: int = 16384
    codebook_embed_dim: int = 8
    codebook_l2_norm: bool = True  # compare and look up l2-normalised vectors
    commit_loss_beta: float = 0.25  # training only
    z_channels: int = 256
    ch: int = 128  # channels at full resolution
    encoder_ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)  # one level per entry, /2 between levels
    decoder_ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2  # the decoder uses one more per level
    dropout_p: float = 0.0
    with_encoder: bool = True  # decoding alone needs no encoder

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.decoder_ch_mult) - 1)


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, dropout: float):
        super().__init__()
        self.norm1 = group_norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = group_norm(c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        if c_in != c_out:
            self.nin_shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        if hasattr(self, "nin_shortcut"):
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        B, C, H, W = x.shape
        h = self.norm(x)
        q, k, v = (conv(h).flatten(2).transpose(1, 2) for conv in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj_out(out.transpose(1, 2).reshape(B, C, H, W))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution: res blocks (with attention at the lowest) and an optional resampler."""

    def __init__(self, c_in, c_out, blocks, attn, dropout, resample: type | None):
        super().__init__()
        self.res = nn.ModuleList(
            ResnetBlock(c_in if i == 0 else c_out, c_out, dropout) for i in range(blocks))
        self.attn = nn.ModuleList(AttnBlock(c_out) for _ in range(blocks if attn else 0))
        if resample is Downsample:
            self.downsample = Downsample(c_out)
        elif resample is Upsample:
            self.upsample = Upsample(c_out)

    def forward(self, h):
        for i, res in enumerate(self.res):
            h = res(h)
            if len(self.attn):
                h = self.attn[i](h)
        if hasattr(self, "downsample"):
            h = self.downsample(h)
        if hasattr(self, "upsample"):
            h = self.upsample(h)
        return h


def _mid(channels: int, dropout: float) -> nn.ModuleList:
    return nn.ModuleList([ResnetBlock(channels, channels, dropout), AttnBlock(channels),
                          ResnetBlock(channels, channels, dropout)])


class Encoder(nn.Module):
    def __init__(self, a: VQArgs):
        super().__init__()
        mult = a.encoder_ch_mult
        self.conv_in = nn.Conv2d(3, a.ch, 3, padding=1)
        c_in = a.ch
        self.conv_blocks = nn.ModuleList()
        for i, m in enumerate(mult):
            last = i == len(mult) - 1
            self.conv_blocks.append(Level(c_in, a.ch * m, a.num_res_blocks, last, a.dropout_p,
                                          None if last else Downsample))
            c_in = a.ch * m
        self.mid = _mid(c_in, a.dropout_p)
        self.norm_out = group_norm(c_in)
        self.conv_out = nn.Conv2d(c_in, a.z_channels, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.conv_blocks:
            h = level(h)
        for block in self.mid:
            h = block(h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, a: VQArgs):
        super().__init__()
        mult = a.decoder_ch_mult
        c_in = a.ch * mult[-1]
        self.conv_in = nn.Conv2d(a.z_channels, c_in, 3, padding=1)
        self.mid = _mid(c_in, a.dropout_p)
        self.conv_blocks = nn.ModuleList()
        for i, m in reversed(list(enumerate(mult))):
            self.conv_blocks.append(Level(c_in, a.ch * m, a.num_res_blocks + 1, i == len(mult) - 1,
                                          a.dropout_p, Upsample if i > 0 else None))
            c_in = a.ch * m
        self.norm_out = group_norm(c_in)
        self.conv_out = nn.Conv2d(c_in, 3, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(z)
        for block in self.mid:
            h = block(h)
        for level in self.conv_blocks:
            h = level(h)
        return self.conv_out(swish(self.norm_out(h)))


@dataclass
class Quantized:
    z_q: torch.Tensor  # [B, C, H, W] with straight-through gradients
    codes: torch.Tensor  # [B, H, W]
    codebook_loss: torch.Tensor
    commit_loss: torch.Tensor


class VectorQuantizer(nn.Module):
    def __init__(self, a: VQArgs):
        super().__init__()
        self.l2_norm = a.codebook_l2_norm
        self.beta = a.commit_loss_beta
        self.embedding = nn.Embedding(a.codebook_size, a.codebook_embed_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / a.codebook_size, 1.0 / a.codebook_size)
        # kept for the official state-dict layout (a ring buffer of recent codes there)
        self.register_buffer("codebook_used", torch.zeros(65536))

    def codebook(self) -> torch.Tensor:
        w = self.embedding.weight
        return F.normalize(w, p=2, dim=-1) if self.l2_norm else w

    def forward(self, z_BCHW: torch.Tensor) -> Quantized:
        z = z_BCHW.permute(0, 2, 3, 1)
        if self.l2_norm:
            z = F.normalize(z, p=2, dim=-1)
        book = self.codebook()
        flat = z.reshape(-1, z.shape[-1])
        dist = (flat.pow(2).sum(1, keepdim=True) + book.pow(2).sum(1)[None]
                - 2 * flat @ book.t())
        codes = dist.argmin(1)
        z_q = book[codes].view(z.shape)
        codebook_loss = F.mse_loss(z_q, z.detach())
        commit_loss = self.beta * F.mse_loss(z_q.detach(), z)
        z_q = z + (z_q - z).detach()
        return Quantized(z_q.permute(0, 3, 1, 2), codes.view(z.shape[:3]), codebook_loss,
                         commit_loss)

    def lookup(self, codes_BHW: torch.Tensor) -> torch.Tensor:
        return self.codebook()[codes_BHW].permute(0, 3, 1, 2)


class VQModel(nn.Module):
    def __init__(self, args: VQArgs):
        super().__init__()
        self.args = args
        if args.with_encoder:
            self.encoder = Encoder(args)
            self.quant_conv = nn.Conv2d(args.z_channels, args.codebook_embed_dim, 1)
        self.decoder = Decoder(args)
        self.quantize = VectorQuantizer(args)
        self.post_quant_conv = nn.Conv2d(args.codebook_embed_dim, args.z_channels, 1)

    def encode(self, images_BCHW: torch.Tensor) -> Quantized:
        return self.quantize(self.quant_conv(self.encoder(images_BCHW)))

    def decode(self, z_q_BCHW: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant_conv(z_q_BCHW))

    def decode_codes(self, codes_BHW: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H*f, W*f] in about [-1, 1] (not clamped)."""
        return self.decode(self.quantize.lookup(codes_BHW))

    def forward(self, images_BCHW: torch.Tensor):
        q = self.encode(images_BCHW)
        return self.decode(q.z_q), q
