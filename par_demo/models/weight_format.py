"""Which weight format a model's step runs in on this CPU, chosen by measuring its matrix
products at the model's real shapes, and what a step costs in it.

A step of a released model reads every weight once for a few rows (2 per token with guidance),
so its time is set by memory bandwidth and by the matmul kernel at those rows: bf16 halves the
bytes where the CPU multiplies bf16 natively (AVX512-BF16, AMX), and is emulated, slower than
fp32, where it does not; oneDNN's prepacked bf16 layout (models/packed.py) reads them faster
again where its kernels suit the CPU. The measurement decides, once per machine and shape.
"""
from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from par_demo.models.packed import PackedLinear, packing_available
from par_demo.models.transformer import ModelArgs


@dataclass(frozen=True)
class WeightFormat:
    """How a model's matrices are held for its steps: the dtype, and for bf16 on a CPU
    whether in oneDNN's prepacked layout (models/packed.py)."""
    dtype: torch.dtype
    packed: bool = False

    @property
    def name(self) -> str:
        short = {torch.bfloat16: "bf16", torch.float32: "fp32"}.get(self.dtype, str(self.dtype))
        return short + (" prepacked" if self.packed else "")


def cpu_formats() -> tuple[WeightFormat, ...]:
    """The formats a CPU run may take; prepacked bf16 only where oneDNN has bf16 kernels."""
    packed = (WeightFormat(torch.bfloat16, packed=True),) if packing_available() else ()
    return packed + (WeightFormat(torch.bfloat16), WeightFormat(torch.float32))


STREAMED_BYTES = 256 << 20  # weights the probe cycles through: well past any CPU's caches
PROBE_REPEATS = 3  # passes over the probe's layers; the median is kept


def layer_shapes(args: ModelArgs) -> list[tuple[int, int]]:
    """(out, in) of each matrix one layer multiplies by: qkv, output projection, w1 and w3
    together, w2."""
    return [(3 * args.dim, args.dim), (args.dim, args.dim),
            (2 * args.ffn_hidden, args.dim), (args.dim, args.ffn_hidden)]


def weight_bytes(args: ModelArgs, dtype: torch.dtype) -> int:
    """Bytes a step reads: every layer's matrices and the output head."""
    per_layer = sum(o * i for o, i in layer_shapes(args))
    return (args.n_layer * per_layer + args.vocab_size * args.dim) * dtype.itemsize


def _product(weight: torch.Tensor, fmt: WeightFormat):
    return PackedLinear(weight) if fmt.packed else functools.partial(F.linear, weight=weight)


@lru_cache(maxsize=64)
def step_matmul_seconds(args: ModelArgs, rows: int, fmt: WeightFormat, threads: int) -> float:
    """Seconds of one step's matrix products at `rows` rows in `fmt`, measured on random
    layers of the model's shapes (as many distinct ones as it takes to stream STREAMED_BYTES,
    so the weights come from memory as in a real step), scaled to all layers, plus the head.
    `threads` is part of the key: the time depends on it (torch's current setting is used)."""
    gen = torch.Generator().manual_seed(0)
    layer_bytes = sum(o * i for o, i in layer_shapes(args)) * fmt.dtype.itemsize
    count = max(1, min(args.n_layer, math.ceil(STREAMED_BYTES / layer_bytes)))
    layers = [[_product((torch.randn(o, i, generator=gen) * 0.02).to(fmt.dtype), fmt)
               for o, i in layer_shapes(args)] for _ in range(count)]
    head = _product((torch.randn(args.vocab_size, args.dim, generator=gen) * 0.02).to(fmt.dtype),
                    fmt)
    x = torch.randn(rows, args.dim, generator=gen).to(fmt.dtype)
    hidden = torch.randn(rows, args.ffn_hidden, generator=gen).to(fmt.dtype)

    def one_pass() -> float:
        start = time.perf_counter()
        for wqkv, wo, w13, w2 in layers:
            wqkv(x), wo(x), w13(x), w2(hidden)
        return (time.perf_counter() - start) / count

    with torch.inference_mode():
        one_pass()  # first touch: pages and kernel selection
        per_layer = statistics.median(one_pass() for _ in range(PROBE_REPEATS))
        start = time.perf_counter()
        head(x)
        head_seconds = time.perf_counter() - start
    return per_layer * args.n_layer + head_seconds


def image_matmul_seconds(args: ModelArgs, step_rows: list[int], fmt: WeightFormat) -> float:
    """The matrix products of a whole image whose steps multiply `step_rows` rows each."""
    threads = torch.get_num_threads()
    counts: dict[int, int] = {}
    for rows in step_rows:
        counts[rows] = counts.get(rows, 0) + 1
    return sum(n * step_matmul_seconds(args, rows, fmt, threads) for rows, n in counts.items())


def fastest_cpu_format(args: ModelArgs, step_rows: list[int]) -> tuple[WeightFormat, float]:
    """The CPU format whose image is measured fastest, and that image's matmul seconds."""
    times = {fmt: image_matmul_seconds(args, step_rows, fmt) for fmt in cpu_formats()}
    best = min(times, key=times.get)
    return best, times[best]
