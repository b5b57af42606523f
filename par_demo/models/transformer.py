"""The LlamaGen / PAR class-conditional transformer, in the official state-dict layout.

Every input is a slot (see slots.py): the class token, a generated token, or a learnable filler
token (PAR's "spe" tokens). Slots carry the 2D rotary position of the cell whose token they hold;
class and filler slots get an all-zero rotary table, exactly as the reference code builds it.
With `target_aware` on, each slot also adds an embedding of the cell it predicts, which lets one
model run any schedule; off, the module is the official layout and loads released checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from par_demo.models.slots import CLASS, FILLER


def find_multiple(n: int, k: int) -> int:
    return n if n % k == 0 else n + k - (n % k)


@dataclass(frozen=True)
class ModelArgs:
    dim: int = 1280  # residual width
    n_layer: int = 36
    n_head: int = 20
    multiple_of: int = 256  # SwiGLU hidden size is rounded up to a multiple of this
    ffn_dim_multiplier: float | None = None  # scales the SwiGLU hidden size (None = 8/3 dim)
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    initializer_range: float = 0.02  # std of the normal init
    token_dropout_p: float = 0.1  # training only
    resid_dropout_p: float = 0.1  # training only
    ffn_dropout_p: float = 0.1  # training only
    num_classes: int = 1000  # index num_classes is the null class used for guidance
    vocab_size: int = 16384  # VQ codebook size
    grid: int = 24  # tokens per side
    num_fillers: int = 0  # learnable transition tokens: n - 1 for PAR-nx, 0 for LlamaGen
    target_aware: bool = False  # add an embedding of each slot's target cell (any-order model)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def ffn_hidden(self) -> int:
        hidden = int(2 * (4 * self.dim) / 3)
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return find_multiple(hidden, self.multiple_of)


@dataclass
class KVCache:
    """Static per-run cache: keys and values of every slot fed so far, for all layers."""

    k_LBHSD: torch.Tensor
    v_LBHSD: torch.Tensor

    @classmethod
    def empty(cls, args: ModelArgs, batch: int, length: int, device, dtype) -> "KVCache":
        shape = (args.n_layer, batch, args.n_head, length, args.head_dim)
        return cls(torch.zeros(shape, device=device, dtype=dtype),
                   torch.zeros(shape, device=device, dtype=dtype))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(torch.mean(xf * xf, dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class FeedForward(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.w1 = nn.Linear(args.dim, args.ffn_hidden, bias=False)
        self.w3 = nn.Linear(args.dim, args.ffn_hidden, bias=False)
        self.w2 = nn.Linear(args.ffn_hidden, args.dim, bias=False)
        self.ffn_dropout = nn.Dropout(args.ffn_dropout_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn_dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


def rotary_table(cell_BS: torch.Tensor, grid: int, head_dim: int, base: float) -> torch.Tensor:
    """[B, S, head_dim/2, 2] (cos, sin) of each slot's cell; cell -1 gives zeros."""
    quarter = head_dim // 4
    freqs = 1.0 / (base ** (torch.arange(0, head_dim // 2, 2, device=cell_BS.device)[:quarter]
                            .float() / (head_dim // 2)))
    cell = cell_BS.clamp(min=0)
    row, col = (cell // grid).float(), (cell % grid).float()
    angles = torch.cat([row[..., None] * freqs, col[..., None] * freqs], dim=-1)
    table = torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)
    return table * (cell_BS >= 0)[..., None, None]


def apply_rotary(x_BSHD: torch.Tensor, rope_BSd2: torch.Tensor) -> torch.Tensor:
    x = x_BSHD.float().reshape(*x_BSHD.shape[:-1], -1, 2)
    rope = rope_BSd2[:, :, None]
    out = torch.stack([
        x[..., 0] * rope[..., 0] - x[..., 1] * rope[..., 1],
        x[..., 1] * rope[..., 0] + x[..., 0] * rope[..., 1],
    ], dim=-1)
    return out.flatten(3).type_as(x_BSHD)


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_head, self.head_dim, self.dim = args.n_head, args.head_dim, args.dim
        self.wqkv = nn.Linear(args.dim, 3 * args.dim, bias=False)
        self.wo = nn.Linear(args.dim, args.dim, bias=False)
        self.resid_dropout = nn.Dropout(args.resid_dropout_p)

    def forward(self, x_BSD, rope_BSd2, mask_B1SS, cache_k, cache_v, start: int):
        B, S, _ = x_BSD.shape
        q, k, v = self.wqkv(x_BSD).split(self.dim, dim=-1)
        q = apply_rotary(q.view(B, S, self.n_head, self.head_dim), rope_BSd2).transpose(1, 2)
        k = apply_rotary(k.view(B, S, self.n_head, self.head_dim), rope_BSd2).transpose(1, 2)
        v = v.view(B, S, self.n_head, self.head_dim).transpose(1, 2)
        if cache_k is not None:
            # A step's slots see each other and every earlier slot: the cache prefix is the mask.
            cache_k[:, :, start:start + S] = k
            cache_v[:, :, start:start + S] = v
            k, v = cache_k[:, :, :start + S], cache_v[:, :, :start + S]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask_B1SS)
        return self.resid_dropout(self.wo(out.transpose(1, 2).reshape(B, S, self.dim)))


class TransformerBlock(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.attention = Attention(args)
        self.feed_forward = FeedForward(args)
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)

    def forward(self, x, rope, mask, cache_k, cache_v, start):
        h = x + self.attention(self.attention_norm(x), rope, mask, cache_k, cache_v, start)
        return h + self.feed_forward(self.ffn_norm(h))


class LabelEmbedder(nn.Module):
    """Class embeddings plus one extra row, the null class used for guidance."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)


class FillerEmbedding(nn.Module):
    """PAR's learnable transition tokens (official name: spe_tok_embeddings)."""

    def __init__(self, count: int, dim: int):
        super().__init__()
        self.special_embeddings = nn.Embedding(count, dim)


@dataclass
class SlotInputs:
    """What the model needs to know about a run of slots; tensors are [S] or [B, S]."""

    kind: torch.Tensor
    cell: torch.Tensor
    filler: torch.Tensor
    target: torch.Tensor

    def to(self, device) -> "SlotInputs":
        return SlotInputs(*(t.to(device) for t in (self.kind, self.cell, self.filler, self.target)))

    def __getitem__(self, s: slice) -> "SlotInputs":
        return SlotInputs(self.kind[..., s], self.cell[..., s], self.filler[..., s],
                          self.target[..., s])


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.cls_embedding = LabelEmbedder(args.num_classes, args.dim)
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.tok_dropout = nn.Dropout(args.token_dropout_p)
        if args.num_fillers:
            self.spe_tok_embeddings = FillerEmbedding(args.num_fillers, args.dim)
        if args.target_aware:
            self.target_embeddings = nn.Embedding(args.grid * args.grid, args.dim)
        self.layers = nn.ModuleList(TransformerBlock(args) for _ in range(args.n_layer))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)

    def init_weights(self, generator: torch.Generator | None = None) -> "Transformer":
        """The reference initialisation: normal(0, 0.02) everywhere, zero output head."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=self.args.initializer_range, generator=generator)
        nn.init.zeros_(self.output.weight)
        return self

    def embed(self, cond_B: torch.Tensor, tokens_BS: torch.Tensor, slots: SlotInputs):
        B, S = tokens_BS.shape
        kind = slots.kind.expand(B, S)[..., None]
        h = self.tok_embeddings(tokens_BS.clamp(min=0))
        h = torch.where(kind == CLASS, self.cls_embedding.embedding_table(cond_B)[:, None], h)
        if self.args.num_fillers:
            filler = self.spe_tok_embeddings.special_embeddings(slots.filler.expand(B, S))
            h = torch.where(kind == FILLER, filler, h)
        if self.args.target_aware:
            h = h + self.target_embeddings(slots.target.expand(B, S))
        return h

    def forward(
        self,
        cond_B: torch.Tensor,
        tokens_BS: torch.Tensor,
        slots: SlotInputs,
        cache: KVCache | None = None,
        start: int = 0,
        mask_BSS: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [B, S, vocab] of S consecutive slots.

        With a cache, the slots are written at `start`: one step, or several steps at once under
        `mask_BSS` ([S, start + S]: what each slot sees of the cache). Without, `mask_BSS` (or
        [S, S]) is the attention mask over the whole sequence (teacher forcing).
        """
        a = self.args
        B, S = tokens_BS.shape
        h = self.tok_dropout(self.embed(cond_B, tokens_BS, slots))
        rope = rotary_table(slots.cell.expand(B, S), a.grid, a.head_dim, a.rope_base)
        mask = None
        if mask_BSS is not None:
            mask = mask_BSS.expand(B, S, mask_BSS.shape[-1])[:, None]
        for i, layer in enumerate(self.layers):
            ck = cache.k_LBHSD[i] if cache is not None else None
            cv = cache.v_LBHSD[i] if cache is not None else None
            h = layer(h, rope, mask, ck, cv, start)
        return self.output(self.norm(h)).float()
