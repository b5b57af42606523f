"""Which weight format a model's step runs in on this CPU, chosen by measuring its matrix
products at the model's real shapes, and what a step costs in it.

A step of a released model reads every weight once for a few rows (2 per token with guidance),
so its time is set by memory bandwidth and by the matmul kernel at those rows: bf16 halves the
bytes where the CPU multiplies bf16 natively (AVX512-BF16, AMX), and is emulated, slower than
fp32, where it does not. The measurement decides, once per machine and shape.
"""
from __future__ import annotations

import math
import statistics
import time
from functools import lru_cache

import torch
import torch.nn.functional as F

from par_demo.models.transformer import ModelArgs

CPU_FORMATS = (torch.bfloat16, torch.float32)
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


@lru_cache(maxsize=64)
def step_matmul_seconds(args: ModelArgs, rows: int, dtype: torch.dtype, threads: int) -> float:
    """Seconds of one step's matrix products at `rows` rows in `dtype`, measured on random
    layers of the model's shapes (as many distinct ones as it takes to stream STREAMED_BYTES,
    so the weights come from memory as in a real step), scaled to all layers, plus the head.
    `threads` is part of the key: the time depends on it (torch's current setting is used)."""
    gen = torch.Generator().manual_seed(0)
    layer_bytes = sum(o * i for o, i in layer_shapes(args)) * dtype.itemsize
    count = max(1, min(args.n_layer, math.ceil(STREAMED_BYTES / layer_bytes)))
    layers = [[(torch.randn(o, i, generator=gen) * 0.02).to(dtype) for o, i in layer_shapes(args)]
              for _ in range(count)]
    head = (torch.randn(args.vocab_size, args.dim, generator=gen) * 0.02).to(dtype)
    x = torch.randn(rows, args.dim, generator=gen).to(dtype)
    hidden = torch.randn(rows, args.ffn_hidden, generator=gen).to(dtype)

    def one_pass() -> float:
        start = time.perf_counter()
        for wqkv, wo, w13, w2 in layers:
            F.linear(x, wqkv), F.linear(x, wo), F.linear(x, w13), F.linear(hidden, w2)
        return (time.perf_counter() - start) / count

    with torch.inference_mode():
        one_pass()  # first touch: pages and kernel selection
        per_layer = statistics.median(one_pass() for _ in range(PROBE_REPEATS))
        start = time.perf_counter()
        F.linear(x, head)
        head_seconds = time.perf_counter() - start
    return per_layer * args.n_layer + head_seconds


def image_matmul_seconds(args: ModelArgs, step_rows: list[int], dtype: torch.dtype) -> float:
    """The matrix products of a whole image whose steps multiply `step_rows` rows each."""
    threads = torch.get_num_threads()
    counts: dict[int, int] = {}
    for rows in step_rows:
        counts[rows] = counts.get(rows, 0) + 1
    return sum(n * step_matmul_seconds(args, rows, dtype, threads) for rows, n in counts.items())


def fastest_cpu_format(args: ModelArgs, step_rows: list[int]) -> tuple[torch.dtype, float]:
    """The CPU format whose image is measured fastest, and that image's matmul seconds."""
    times = {dtype: image_matmul_seconds(args, step_rows, dtype) for dtype in CPU_FORMATS}
    best = min(times, key=times.get)
    return best, times[best]
