"""Numbers the stages report: PSNR, codebook use and the Frechet distance between feature sets."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def psnr(images_a: np.ndarray, images_b: np.ndarray) -> float:
    """Mean per-image PSNR (dB) of two uint8 batches [N, H, W, 3]."""
    diff = images_a.astype(np.float64) - images_b.astype(np.float64)
    mse = np.maximum((diff ** 2).reshape(len(diff), -1).mean(1), 1e-10)
    return float(np.mean(10 * np.log10(255.0 ** 2 / mse)))


@dataclass(frozen=True)
class CodebookUse:
    used: int  # distinct codes that occur
    size: int
    perplexity: float  # exp(entropy) of the code histogram: the effective number of codes

    @property
    def fraction(self) -> float:
        return self.used / self.size


def codebook_use(codes: np.ndarray, size: int) -> CodebookUse:
    counts = np.bincount(codes.reshape(-1), minlength=size)
    p = counts[counts > 0] / counts.sum()
    return CodebookUse(int((counts > 0).sum()), size, float(np.exp(-(p * np.log(p)).sum())))


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the FID formula on any features.

    Tr((S_a S_b)^(1/2)) is the sum of square roots of the eigenvalues of the symmetric
    S_a^(1/2) S_b S_a^(1/2), which numpy alone computes stably.
    """
    a, b = features_a.astype(np.float64), features_b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)
