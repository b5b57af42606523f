"""The transformer's step forward with the per-op overhead taken out, for one schedule and batch.

The plain forward (transformer.py) rebuilds rotary tables and slot embeddings at every step and
goes through nn.Module calls, which is most of a small model's step on a CPU, and kernel launches
on a GPU. Here everything that depends only on the schedule is built once per run: the rotary
factors and the class / filler / target embeddings of every slot. Weights are read straight from
the model (w1 and w3 concatenated into one matmul); the KV cache is static and owned by the
decoder. Each op is the plain path's op on the same values, so the logits are the same.

Two ways to attend:
- prefix (CPU): a step attends to the cache prefix it has filled, a view of the static cache;
- static (GPU): every step attends to the whole cache under a length mask and writes through a
  device index, so one CUDA graph per step size replays the forward with one launch.
"""
from __future__ import annotations

import functools
import threading
import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from par_demo.models.slots import TOKEN, SlotLayout
from par_demo.models.transformer import SlotInputs, Transformer, rotary_table


@dataclass(frozen=True)
class StepTables:
    """What the steps of one run feed besides the tokens, built once per run; step t reads the
    slots starts[t]:starts[t + 1] of each (views, no copies)."""

    starts: list[int]  # [num_steps + 1] first slot of each step
    mixed: list[bool]  # per step: some slot feeds a class or filler embedding, not a token
    fed: torch.Tensor  # [S] cell whose token each slot feeds (0 where it feeds none)
    token_slot: torch.Tensor  # [S, 1] bool: the slot feeds a token
    fixed: torch.Tensor  # [N, S, D] embedding of the class and filler slots
    target: torch.Tensor | None  # [S, D] target-cell embedding (any-order model), else None
    cos: torch.Tensor  # [S, 3 * dim] float32: rotary cos of each q / k component, 1 for v
    sin: torch.Tensor  # [S, 3 * dim] float32: signed rotary sin, 0 for v


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """transformer.RMSNorm's arithmetic without the module call."""
    if x.dtype == torch.float32:  # the casts are no-ops, but each is a dispatch
        return x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + eps) * weight
    xf = x.float()
    return (xf * torch.rsqrt(torch.mean(xf * xf, dim=-1, keepdim=True) + eps)).type_as(x) * weight


def attend(q_NHSd: torch.Tensor, k_NHTd: torch.Tensor, v_NHTd: torch.Tensor,
           mask: torch.Tensor | None) -> torch.Tensor:
    """Attention of a step's queries over the cache. One bf16 query a row on the CPU (a
    released model's 1x step) takes three plain ops: the CPU kernel of
    scaled_dot_product_attention costs about 1 ms a call there for what they do in 0.2 (36 calls
    a step). float32 keeps the kernel, so the small models' fast steps equal their plain ones
    bit for bit."""
    if (mask is None and q_NHSd.shape[2] == 1 and q_NHSd.device.type == "cpu"
            and q_NHSd.dtype == torch.bfloat16):
        scores = (q_NHSd @ k_NHTd.transpose(-1, -2)).float() * q_NHSd.shape[-1] ** -0.5
        return scores.softmax(-1).type_as(v_NHTd) @ v_NHTd
    return F.scaled_dot_product_attention(q_NHSd, k_NHTd, v_NHTd, attn_mask=mask)


def rotary_factors(cell_S: torch.Tensor, args) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 (cos, sin) [S, 3 * dim] such that qkv * cos + pair_swap(qkv) * sin rotates q and
    k exactly as apply_rotary does (x0 c - x1 s, x1 c + x0 s) and leaves v as it is."""
    table = rotary_table(cell_S[None], args.grid, args.head_dim, args.rope_base)[0]  # [S, d/2, 2]
    c, s = table[..., 0], table[..., 1]
    cos = torch.stack([c, c], -1).flatten(1)
    sin = torch.stack([-s, s], -1).flatten(1)
    ones, zeros = torch.ones_like(cos), torch.zeros_like(sin)
    heads = args.n_head
    cos = torch.cat([cos.repeat(1, heads), cos.repeat(1, heads), ones.repeat(1, heads)], -1)
    sin = torch.cat([sin.repeat(1, heads), sin.repeat(1, heads), zeros.repeat(1, heads)], -1)
    return cos, sin


def pack_feed_forward(model: Transformer) -> Transformer:
    """Give each block's w1 and w3 one tensor (w1 its first rows, w3 the rest), so the fast
    step reads them with one matmul through a view instead of a concatenated copy, which for a
    released model would be a second copy of half its weights. The module and its state dict
    see the same values as before."""
    with torch.no_grad():
        for block in model.layers:
            ff = block.feed_forward
            if not isinstance(ff.w1, torch.nn.Linear):  # prepacked (models/packed.py)
                continue
            w1, w3 = ff.w1.weight, ff.w3.weight
            if stacked_rows(w1, w3) is not None:
                continue
            w13 = torch.cat([w1, w3])
            ff.w1.weight = torch.nn.Parameter(w13[:len(w1)], requires_grad=w1.requires_grad)
            ff.w3.weight = torch.nn.Parameter(w13[len(w1):], requires_grad=w3.requires_grad)
    return model


def stacked_rows(top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor | None:
    """`top` and `bottom` stacked by rows as a view, when `bottom` follows `top` in memory
    (pack_feed_forward); else None."""
    if not (top.is_contiguous() and bottom.is_contiguous() and top.shape[1:] == bottom.shape[1:]
            and top.dtype == bottom.dtype and top.device == bottom.device
            and top.untyped_storage().data_ptr() == bottom.untyped_storage().data_ptr()
            and bottom.storage_offset() == top.storage_offset() + top.numel()):
        return None
    return top.as_strided((len(top) + len(bottom), *top.shape[1:]), top.stride(),
                          top.storage_offset())


def weight_versions(model: Transformer) -> list[tuple[int, int]]:
    """Which tensors the weights are and how often each was changed in place: a decoder built
    before a change (training, load_state_dict) holds stale fused copies."""
    return [(id(p), p._version) for p in model.parameters()]


def _product(linear: torch.nn.Module):
    """x -> x W^T of a bias-free layer: F.linear on a plain weight (no module call), the
    layer itself when its weight is prepacked (models/packed.py)."""
    if isinstance(linear, torch.nn.Linear):
        return functools.partial(F.linear, weight=linear.weight)
    return linear


def _gate_up(ff):
    """x -> (x W1^T, x W3^T): one matmul on w1 and w3 stacked where they are plain."""
    if not isinstance(ff.w1, torch.nn.Linear):
        w1, w3 = ff.w1, ff.w3
        return lambda x: (w1(x), w3(x))
    w1, w3 = ff.w1.weight, ff.w3.weight
    w13 = stacked_rows(w1, w3)
    return functools.partial(_stacked_gate_up,
                             w13=w13 if w13 is not None else torch.cat([w1, w3]))


def _stacked_gate_up(x: torch.Tensor, w13: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return F.linear(x, w13).chunk(2, dim=-1)


class FastDecoder:
    """A model's step forward for N rows (cond and uncond rows together when guided) over
    sequences of at most `length` slots. `run(layout, cond_N)` returns the step function of one
    run: step(t, tokens_BL) -> logits [N, S, V], called for t = 0, 1, ... in order."""

    static = False  # attend to the whole cache under a length mask (for CUDA graphs)

    def __init__(self, model: Transformer, rows: int, length: int):
        a = model.args
        # weakly: a pooled decoder must not keep its model alive
        self.model, self.args, self.rows = weakref.ref(model), a, rows
        param = model.tok_embeddings.weight
        self.device, self.dtype = param.device, param.dtype
        self.layers = [dict(
            attn_norm=blk.attention_norm.weight, wqkv=_product(blk.attention.wqkv),
            wo=_product(blk.attention.wo), ffn_norm=blk.ffn_norm.weight,
            gate_up=_gate_up(blk.feed_forward), w2=_product(blk.feed_forward.w2),
        ) for blk in model.layers]
        self.tok_embeddings = param
        self.weights_seen = weight_versions(model)
        self.norm, self.output = model.norm.weight, _product(model.output)
        # [layer] -> [2 (k, v), N, H, T, head_dim]: attention reads contiguous keys and values
        # (faster than strided views); one copy writes a step's keys and values
        self.cache = torch.zeros(a.n_layer, 2, rows, a.n_head, length, a.head_dim,
                                 device=self.device, dtype=self.dtype)
        self.positions = torch.arange(length, device=self.device)

    def tables(self, layout: SlotLayout, cond_N: torch.Tensor) -> StepTables:
        model, dev = self.model(), self.device
        slots = SlotInputs(*(torch.from_numpy(x).to(dev) for x in
                             (layout.kind, layout.cell, layout.filler, layout.target)))
        N = cond_N.numel()
        is_token = layout.kind == TOKEN
        starts = layout.starts.tolist()
        cos, sin = rotary_factors(slots.cell, self.args)
        return StepTables(
            starts=starts,
            mixed=[not is_token[s0:s1].all() for s0, s1 in zip(starts[:-1], starts[1:])],
            fed=torch.from_numpy(layout.fed).to(dev).clamp(min=0),
            token_slot=torch.from_numpy(is_token[:, None]).to(dev),
            # the plain embedding of every slot with token 0 fed: exact for class and filler
            fixed=model.embed(cond_N, torch.zeros(N, layout.kind.size, dtype=torch.long,
                                                  device=dev), slots),
            target=(model.target_embeddings.weight[slots.target] if self.args.target_aware
                    else None),
            cos=cos, sin=sin)

    def embed(self, tables: StepTables, first: int, last: int,
              tokens_BL: torch.Tensor) -> torch.Tensor:
        """Inputs [N, S, D] of the slots of steps first..last."""
        s0, s1 = tables.starts[first], tables.starts[last + 1]
        h = F.embedding(tokens_BL[:, tables.fed[s0:s1]].clamp(min=0), self.tok_embeddings)
        if tables.target is not None:
            h = h + tables.target[s0:s1]
        B = h.shape[0]
        if B != self.rows:  # guided: the uncond rows feed the same tokens
            h = h.repeat(self.rows // B, 1, 1)
        if any(tables.mixed[first:last + 1]):
            h = torch.where(tables.token_slot[s0:s1], h, tables.fixed[:, s0:s1])
        return h

    def forward(self, h_NSD: torch.Tensor, cos, sin, start, size: int,
                mask_ST: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [N, S, V] of one step's slots at `start` (an int; a device tensor when
        static), or of several steps' slots under `mask_ST` (what each slot sees of the cache:
        [S, start + S], or [S, cache length] when static)."""
        a = self.args
        N, S, D = h_NSD.shape
        H, hd = a.n_head, a.head_dim
        if self.static:
            index = start + self.positions[:size]
            visible = (self.positions < start + size)[None, None, None]  # [1, 1, 1, T]
        if mask_ST is not None:
            visible = mask_ST
        for i, w in enumerate(self.layers):
            qkv = w["wqkv"](rms_norm(h_NSD, w["attn_norm"], a.norm_eps))
            # rotated in float32 like apply_rotary (no-ops for float32 weights)
            qkv = qkv.float()
            swapped = qkv.view(N, S, -1, 2).flip(-1).view(N, S, 3 * D)
            qkv = (qkv * cos + swapped * sin).type_as(h_NSD).view(N, S, 3, H, hd)
            cache = self.cache[i]
            new_kv = qkv[:, :, 1:].permute(2, 0, 3, 1, 4)  # [2, N, H, S, hd]
            if self.static:
                cache.index_copy_(3, index, new_kv)
                kv, mask = cache, visible
            else:
                cache[:, :, :, start:start + S] = new_kv
                kv, mask = cache[:, :, :, :start + S], mask_ST
            out = attend(qkv[:, :, 0].transpose(1, 2), kv[0], kv[1], mask)
            h_NSD = h_NSD + w["wo"](out.transpose(1, 2).reshape(N, S, D))
            gate, up = w["gate_up"](rms_norm(h_NSD, w["ffn_norm"], a.norm_eps))
            h_NSD = h_NSD + w["w2"](F.silu(gate) * up)
        return self.output(rms_norm(h_NSD, self.norm, a.norm_eps)).float()

    def catch_up(self, layout: SlotLayout, tables: StepTables, first: int, last: int,
                 tokens_BL: torch.Tensor) -> torch.Tensor:
        """Logits [N, S, V] of the slots of steps first..last in one forward (their inputs
        known), under the layout's mask."""
        s0, s1 = tables.starts[first], tables.starts[last + 1]
        sees = layout.visible(s0, s1)
        if self.static:
            sees = np.pad(sees, ((0, 0), (0, self.positions.numel() - s1)))
        return self.forward(self.embed(tables, first, last, tokens_BL), tables.cos[s0:s1],
                            tables.sin[s0:s1], s0, s1 - s0,
                            torch.from_numpy(sees).to(self.device))

    def step_forward(self, tables: StepTables, t: int, tokens_BL: torch.Tensor) -> torch.Tensor:
        s0, s1 = tables.starts[t], tables.starts[t + 1]
        return self.forward(self.embed(tables, t, t, tokens_BL), tables.cos[s0:s1],
                            tables.sin[s0:s1], s0, s1 - s0)

    def run(self, layout: SlotLayout, cond_N: torch.Tensor):
        tables = self.tables(layout, cond_N)

        def several(first: int, last: int, tokens_BL: torch.Tensor) -> torch.Tensor:
            return self.catch_up(layout, tables, first, last, tokens_BL)

        def one(t: int, tokens_BL: torch.Tensor) -> torch.Tensor:
            if layout.sees is not None:  # a layout's own mask: every step goes with it (eager)
                return several(t, t, tokens_BL)
            return self.step_forward(tables, t, tokens_BL)

        return steps_in_order(layout.starts, one, several)


def steps_in_order(starts, one_step, several_steps):
    """The step function of one run: step(t, tokens_BL) -> logits [N, S, V] of step t's slots,
    for t increasing by one. The first call may skip ahead (a run that starts from known tokens):
    the skipped steps' slots are then computed with step t's in one forward, several_steps(first,
    last, tokens_BL), and only step t's logits are returned."""
    filled = 0  # steps whose slots are in the cache

    def step(t: int, tokens_BL: torch.Tensor) -> torch.Tensor:
        nonlocal filled
        if t < filled or (filled and t > filled):
            raise ValueError(f"step {t} asked after step {filled - 1}: steps run in order")
        logits = (one_step(t, tokens_BL) if t == filled
                  else several_steps(filled, t, tokens_BL)[:, int(starts[t] - starts[filled]):])
        filled = t + 1
        return logits

    return step


class GraphedDecoder(FastDecoder):
    """The static forward captured as one CUDA graph per step size, on first use of that size;
    kept between runs (see DecoderPool), so a model's graphs are captured once per batch size.
    Whatever an earlier run left in the cache is masked and overwritten before it is visible.
    A run's catch-up over known steps (its size differs every time) runs eagerly."""

    static = True

    def __init__(self, model: Transformer, rows: int, length: int):
        super().__init__(model, rows, length)
        self.graphs: dict[int, tuple[torch.cuda.CUDAGraph, dict]] = {}
        self.pool = torch.cuda.graph_pool_handle()

    def _capture(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, start: int):
        size = h.shape[1]
        io = dict(h=h.clone(), cos=cos.clone(), sin=sin.clone(),
                  start=torch.tensor(start, device=self.device))
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up: kernels pick their algorithms outside capture
            for _ in range(2):
                self.forward(io["h"], io["cos"], io["sin"], io["start"], size)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            io["logits"] = self.forward(io["h"], io["cos"], io["sin"], io["start"], size)
        return graph, io

    def step_forward(self, tables: StepTables, t: int, tokens_BL: torch.Tensor) -> torch.Tensor:
        s0, s1 = tables.starts[t], tables.starts[t + 1]
        h, cos, sin = self.embed(tables, t, t, tokens_BL), tables.cos[s0:s1], tables.sin[s0:s1]
        if s1 - s0 not in self.graphs:
            self.graphs[s1 - s0] = self._capture(h, cos, sin, s0)
        graph, io = self.graphs[s1 - s0]
        io["h"].copy_(h)
        io["cos"].copy_(cos)
        io["sin"].copy_(sin)
        io["start"].fill_(s0)
        graph.replay()
        return io["logits"]


class DecoderPool:
    """Decoders kept per (model, rows, length), so that fused weights are built and graphs
    captured once; each serves one run at a time."""

    def __init__(self, kind: type[FastDecoder]):
        self.kind = kind
        self._lock = threading.Lock()
        self._free: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @contextmanager
    def borrow(self, model: Transformer, rows: int, length: int):
        with self._lock:
            free = self._free.setdefault(model, {}).setdefault((rows, length), [])
            decoder = free.pop() if free else None
        if decoder is None or decoder.weights_seen != weight_versions(model):
            decoder = self.kind(model, rows, length)
        try:
            yield decoder
        finally:
            with self._lock:
                self._free.setdefault(model, {}).setdefault((rows, length), []).append(decoder)

    def idle(self, model: Transformer, rows: int, length: int) -> int:
        """Decoders of this shape waiting for a run: a run in progress holds its own."""
        with self._lock:
            return len(self._free.get(model, {}).get((rows, length), []))


FAST, GRAPHED = DecoderPool(FastDecoder), DecoderPool(GraphedDecoder)
