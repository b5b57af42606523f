"""PSNR, codebook use and the Frechet distance."""
import numpy as np
import pytest

from par_demo.train.metrics import codebook_use, frechet_distance, psnr


def test_psnr_of_a_known_error():
    a = np.full((2, 4, 4, 3), 100, dtype=np.uint8)
    b = a.copy()
    b[0] += 10  # mse 100 -> 10 log10(255^2 / 100)
    b[1] += 1  # mse 1
    expected = (10 * np.log10(255 ** 2 / 100) + 10 * np.log10(255 ** 2)) / 2
    assert psnr(a, b) == pytest.approx(expected)


def test_codebook_use_counts_codes_and_their_perplexity():
    use = codebook_use(np.array([[0, 0, 1, 1], [2, 2, 3, 3]]), size=8)
    assert (use.used, use.size, use.fraction) == (4, 8, 0.5)
    assert use.perplexity == pytest.approx(4.0)


def _sqrtm_trace(a, b):
    vals = np.linalg.eigvals(a @ b)
    return np.sqrt(np.clip(vals.real, 0, None)).sum()


def test_frechet_distance_matches_the_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) + 2.0
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    direct = (((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(cx) + np.trace(cy)
              - 2 * _sqrtm_trace(cx, cy))
    assert frechet_distance(x, y) == pytest.approx(direct, rel=1e-6)
    assert frechet_distance(x, x + 3.0) == pytest.approx(6 * 9.0, rel=1e-6)
