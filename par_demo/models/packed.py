"""A released model's matrices in oneDNN's blocked layout, for bf16 steps on a CPU.

A step multiplies every weight by a few rows (2 per token with guidance). At those rows
oneDNN's kernel on a prepacked bf16 weight streams the weights 1.5-1.9x faster than F.linear
on the plain one (measured on a 2-core AMD EPYC with AVX512-BF16: 36 layers' w1|w3 at 2 threads,
26 against 38 ms at 2 rows, 27 against 53 ms at 8), with the same products bit for bit. Whether
a machine gains is measured (weight_format.py), never assumed.

Packing replaces each nn.Linear of the blocks and the head by a PackedLinear, one at a time, so
the model never holds two copies of a matrix; the module's forward and the fast step call it
as they would call the Linear.
"""
from __future__ import annotations

import torch
from torch import nn

from par_demo.models.transformer import Transformer


def packing_available() -> bool:
    """oneDNN with bf16 kernels on this CPU."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


class PackedLinear(nn.Module):
    """y = x W^T for a bf16 weight W held only in oneDNN's blocked layout (no bias)."""

    def __init__(self, weight: torch.Tensor, rows_hint: int = 8) -> None:
        super().__init__()
        if weight.dtype != torch.bfloat16 or weight.device.type != "cpu":
            raise ValueError(f"packing takes bf16 weights on the CPU, got {weight.dtype} on "
                             f"{weight.device.type}")
        self.out_features, self.in_features = weight.shape
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), rows_hint)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, None, "none", [None], "")


def _packed(linear: nn.Module, rows_hint: int) -> nn.Module:
    if isinstance(linear, PackedLinear):
        return linear
    if linear.bias is not None:
        raise ValueError("packing takes linear layers without bias")
    return PackedLinear(linear.weight, rows_hint)


@torch.no_grad()
def pack_linears(model: Transformer, rows_hint: int = 8) -> Transformer:
    """Pack every matrix a step multiplies (qkv, output projection, w1, w3, w2, the head) in
    place; `rows_hint`: the rows the steps will mostly have (the kernel's blocking hint)."""
    for block in model.layers:
        attention, ff = block.attention, block.feed_forward
        attention.wqkv = _packed(attention.wqkv, rows_hint)
        attention.wo = _packed(attention.wo, rows_hint)
        ff.w1 = _packed(ff.w1, rows_hint)
        ff.w3 = _packed(ff.w3, rows_hint)
        ff.w2 = _packed(ff.w2, rows_hint)
    model.output = _packed(model.output, rows_hint)
    return model


def is_packed(model: Transformer) -> bool:
    return isinstance(model.output, PackedLinear)
