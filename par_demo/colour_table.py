"""A per-code colour table: each code's mean colour over the decoder's patch, so a preview frame
is a table lookup instead of a decode (the pattern ComfyUI uses for its latent previews).

The table is measured from the tokenizer itself: random code grids are decoded, every code
appearing in several of them, and each code gets the mean colour of its patches over those
contexts. A codebook too large to cover within the decoding budget (VQ-16's 16,384 codes on a
CPU) gets the codes it covered measured and the others fitted from their code vectors by least
squares on quadratic features, fitted on the measured ones. It is computed once per tokenizer
(its weights' digest names it) and kept in memory and on disk.
"""
from __future__ import annotations

import hashlib
import os
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from par_demo.models.vq import VQModel


@dataclass(frozen=True)
class ColourTableConfig:
    grid: int = 8  # tokens per side of the random grids decoded (edges are a small share)
    samples_per_code: int = 4  # patches averaged per code where the budget allows
    max_patches: int = 1536  # decoding budget: VQ-16 decodes a patch in ~18 ms on one CPU
    # thread, so ~30 s once per machine (the rest fitted); the emoji tokenizer's 4096 in ~1 s
    batch: int = 4  # grids per decode
    seed: int = 0


def cache_dir() -> Path:
    """Where tables are kept between runs: $PAR_CACHE, else ~/.cache/par_demo."""
    root = os.environ.get("PAR_CACHE") or Path.home() / ".cache" / "par_demo"
    return Path(root) / "colour_tables"


def tokenizer_digest(tokenizer: VQModel, config: ColourTableConfig) -> str:
    """Names a table: the decoder's and codebook's weights and the table's settings."""
    h = hashlib.sha256(repr(config).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        if not name.startswith(("encoder.", "quant_conv.")):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:24]


def _code_grids(codebook_size: int, config: ColourTableConfig) -> np.ndarray:
    """[N, G, G] grids in which every code appears about equally often, in random places."""
    cells = config.grid * config.grid
    patches = min(config.max_patches, codebook_size * config.samples_per_code)
    grids = max(1, -(-patches // cells))
    rng = np.random.default_rng(config.seed)
    rounds = -(-grids * cells // codebook_size)
    codes = np.concatenate([rng.permutation(codebook_size) for _ in range(rounds)])
    return codes[:grids * cells].reshape(grids, config.grid, config.grid)


@torch.inference_mode()
def patch_means(tokenizer: VQModel, grids_NGG: np.ndarray, batch: int) -> np.ndarray:
    """[N, G, G, 3] float32 mean colour (0..255) of each cell's patch in the decoded grids."""
    device = next(tokenizer.parameters()).device
    f = tokenizer.args.downsample
    out = []
    for start in range(0, len(grids_NGG), batch):
        codes = torch.as_tensor(grids_NGG[start:start + batch], device=device)
        images = (tokenizer.decode_codes(codes).float().clamp(-1, 1) + 1) * 127.5
        B, C, H, W = images.shape
        patches = images.view(B, C, H // f, f, W // f, f).mean((3, 5))
        out.append(patches.permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


def _features(vectors_VD: np.ndarray) -> np.ndarray:
    """1, x and the products x_i x_j (i <= j) of each code vector."""
    V, D = vectors_VD.shape
    i, j = np.triu_indices(D)
    return np.concatenate([np.ones((V, 1)), vectors_VD, vectors_VD[:, i] * vectors_VD[:, j]], 1)


def measure_table(tokenizer: VQModel, config: ColourTableConfig = ColourTableConfig()
                  ) -> np.ndarray:
    """[V, 3] uint8: each code's mean patch colour, measured or (codes the budget did not
    cover) fitted from its code vector."""
    V = tokenizer.args.codebook_size
    grids = _code_grids(V, config)
    means = patch_means(tokenizer, grids, config.batch).reshape(-1, 3)
    codes = grids.reshape(-1)
    sums = np.zeros((V, 3))
    np.add.at(sums, codes, means)
    counts = np.bincount(codes, minlength=V)
    seen = counts > 0
    table = np.zeros((V, 3))
    table[seen] = sums[seen] / counts[seen, None]
    if not seen.all():
        with torch.inference_mode():
            vectors = tokenizer.quantize.codebook().float().cpu().numpy().astype(np.float64)
        features = _features(vectors)
        weights, *_ = np.linalg.lstsq(features[codes], means, rcond=None)
        table[~seen] = features[~seen] @ weights
    return table.round().clip(0, 255).astype(np.uint8)


class ColourTables:
    """Tables per tokenizer: in memory while the tokenizer lives, on disk between runs."""

    def __init__(self, config: ColourTableConfig = ColourTableConfig()) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._tables: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def table(self, tokenizer: VQModel) -> np.ndarray:
        with self._lock:
            if tokenizer not in self._tables:
                self._tables[tokenizer] = self._load_or_measure(tokenizer)
            return self._tables[tokenizer]

    def _load_or_measure(self, tokenizer: VQModel) -> np.ndarray:
        path = cache_dir() / f"{tokenizer_digest(tokenizer, self.config)}.npy"
        if path.is_file():
            table = np.load(path, allow_pickle=False)
            if table.shape == (tokenizer.args.codebook_size, 3) and table.dtype == np.uint8:
                return table
        table = measure_table(tokenizer, self.config)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(temporary, table)
            temporary.replace(path)  # whole or absent, even with two processes writing
        except OSError:
            pass  # a read-only home: measured again next time
        return table


COLOUR_TABLES = ColourTables()
