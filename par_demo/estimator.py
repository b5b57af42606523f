"""The paper's estimator of how tokens depend on each other (its Sec. 8.1, Eq. 1-2): over the
tokens of many real pictures, predict one cell's codebook feature y from the features x of the
conditioning cells with a predictor f_theta, and bound the conditional entropy by the Gaussian
entropy of the residual,

    H(y | x) <= h(y - f_theta(x)) <= 1/2 log((2 pi e)^d |Sigma|),  Sigma = E[(y - f(x))(y - f(x))^T]

f_theta is least squares with a constant, plus for Figure 9 (one reference token) a learned
per-token correction: each reference token's mean residual, shrunk towards least squares. The
prior bound uses the constant alone. Every residual is out of fold: the predictor scoring a
picture was fitted on the other folds, so a bound is never tightened by fitting noise (in
sample, least squares alone would gain about d * p / 2N nats, 0.007 for 9 predictors over 4859
pictures, as large as the far cells' signal; the per-token table far more). Fitting noise
loosens an out-of-fold bound instead, so a map's information is low by the null map's bias:
about 0.007 nats with least squares alone, 0.10 with the per-token correction, which still
raises every ring's information (1.04 nats next to cell 8,8 against 0.86, 0.14 from 4 cells
away against 0.06).

Everything runs on second moments per fold (X^T X, X^T Y, Y^T Y, and per-token sums): a fit and
its out-of-fold error are small matrix products. A map takes a tenth of a second with least
squares alone and 1-3 s with the per-token correction on a busy core, which is why the app
ships every cell's map precomputed (training_codes.py).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EstimatorConfig:
    folds: int = 5  # out-of-fold residuals: each predictor is scored on pictures it never saw
    ridge: float = 1e-4  # per picture, on the predictors' Gram diagonal: collinear cells solve
    # added to every residual variance: a cell whose token never changes would bound at -inf;
    # a real cell's variance per dimension is 1e-2 or more, so it moves a bound by < 1e-3 nats
    variance_floor: float = 1e-6
    # Figure 9's f_theta: least squares plus each reference token's mean residual, learned on the
    # training folds and shrunk by count / (count + this) towards least squares; None: least
    # squares alone. 8 gave the tightest bound of 2, 8 and 32 on the shipped emoji, 0.18-0.21
    # nats below least squares next to the cell and 0.08-0.11 from 4 cells away
    token_shrinkage: float | None = 8.0
    error_sigmas: float = 4.0  # spread of the null map in the stated error: all G*G-1 cells at once
    seed: int = 0  # which pictures share a fold, and the shuffle of the null map

    def __post_init__(self):
        if self.folds < 2:
            raise ValueError(f"folds must be 2 or more (out-of-fold residuals), got {self.folds}")
        if self.ridge < 0:
            raise ValueError(f"ridge must be 0 or more, got {self.ridge}")
        if self.token_shrinkage is not None and self.token_shrinkage <= 0:
            raise ValueError(f"token_shrinkage must be above 0 or None (least squares alone), "
                             f"got {self.token_shrinkage}")


def gaussian_bound(cov_DD: np.ndarray) -> np.ndarray:
    """1/2 log((2 pi e)^d |Sigma|) over the last two axes: the largest differential entropy of
    anything with this covariance (nats)."""
    d = cov_DD.shape[-1]
    sign, logdet = np.linalg.slogdet(cov_DD)
    return 0.5 * (d * np.log(2 * np.pi * np.e) + np.where(sign > 0, logdet, -np.inf))


def codebook_features(codes_NGG: np.ndarray, codebook_VD: np.ndarray) -> np.ndarray:
    """[N, G*G, D] float64: the codebook vector of each token (what the decoder reads)."""
    codes = np.asarray(codes_NGG)
    if codes.ndim != 3 or codes.shape[1] != codes.shape[2]:
        raise ValueError(f"codes must be [pictures, G, G] token grids, got {codes.shape}")
    if codes.min() < 0 or codes.max() >= len(codebook_VD):
        raise ValueError(f"codes must be in 0..{len(codebook_VD) - 1} (the codebook's size), got "
                         f"{codes.min()}..{codes.max()}")
    return np.asarray(codebook_VD, dtype=np.float64)[codes.reshape(len(codes), -1)]


def fold_of_each(pictures: int, config: EstimatorConfig) -> np.ndarray:
    """[N] fold index of each picture: a seeded shuffle, so a dataset sorted by class spreads."""
    if pictures < 2 * config.folds:
        raise ValueError(f"the estimator needs at least {2 * config.folds} pictures "
                         f"({config.folds} folds), got {pictures}")
    order = np.random.default_rng(config.seed).permutation(pictures)
    fold = np.empty(pictures, dtype=np.int64)
    fold[order] = np.arange(pictures) % config.folds
    return fold


def per_fold(fold_N: np.ndarray, folds: int, a_NP: np.ndarray, b_NQ: np.ndarray) -> np.ndarray:
    """[K, P, Q]: a^T b summed over each fold's pictures."""
    return np.stack([a_NP[fold_N == k].T @ b_NQ[fold_N == k] for k in range(folds)])


def out_of_fold_fit(xx_KPP: np.ndarray, xy_KPQD: np.ndarray, ridge: np.ndarray) -> np.ndarray:
    """[K, P, Q, D] least squares of Q targets on x, fitted without fold k. Column 0 of x is the
    constant (not ridged); `ridge` [K] is added to the other diagonal entries."""
    K, P, Q, D = xy_KPQD.shape
    penalty = np.eye(P)
    penalty[0, 0] = 0.0
    return np.linalg.solve((xx_KPP.sum(0) - xx_KPP) + ridge[:, None, None] * penalty,
                           (xy_KPQD.sum(0) - xy_KPQD).reshape(K, P, Q * D)).reshape(K, P, Q, D)


def fold_errors(beta_KPQD: np.ndarray, xx_KPP: np.ndarray, xy_KPQD: np.ndarray,
                yy_KQDD: np.ndarray) -> np.ndarray:
    """[K, Q, D, D]: the sum of e e^T over fold k's pictures, e = y - beta_k^T x."""
    cross = np.einsum("kpqd,kpqe->kqde", beta_KPQD, xy_KPQD)
    fitted = np.einsum("kpqd,kpr,krqe->kqde", beta_KPQD, xx_KPP, beta_KPQD, optimize=True)
    return yy_KQDD - cross - cross.transpose(0, 1, 3, 2) + fitted


def out_of_fold_errors(xx_KPP: np.ndarray, xy_KPQD: np.ndarray, yy_KQDD: np.ndarray,
                       ridge: np.ndarray) -> np.ndarray:
    """[K, Q, D, D] out-of-fold residual second moments of least squares (see out_of_fold_fit)."""
    return fold_errors(out_of_fold_fit(xx_KPP, xy_KPQD, ridge), xx_KPP, xy_KPQD, yy_KQDD)


def group_sums(values_NF: np.ndarray, group_N: np.ndarray, groups: int) -> np.ndarray:
    """[groups, F] the sum of the rows of each group (zero for an empty one)."""
    out = np.zeros((groups, values_NF.shape[1]))
    np.add.at(out, group_N, values_NF)
    return out


def token_corrected_errors(errors_KQDD: np.ndarray, beta_KPQD: np.ndarray, x_NP: np.ndarray,
                           flat_NF: np.ndarray, fold_N: np.ndarray, token_N: np.ndarray,
                           shrinkage: float) -> np.ndarray:
    """Out-of-fold errors of least squares plus a per-token correction: the mean training
    residual of the pictures whose reference token is v, times n_v / (n_v + shrinkage). Only
    per-token sums are needed: e = r - m_v gives e e^T = r r^T - r m^T - m r^T + m m^T."""
    K, P, Q, D = beta_KPQD.shape
    V = int(token_N.max()) + 1
    key = fold_N * V + token_N
    sum_y = group_sums(flat_NF, key, K * V).reshape(K, V, -1)
    sum_x = group_sums(x_NP, key, K * V).reshape(K, V, P)
    count = np.bincount(key, minlength=K * V).reshape(K, V).astype(np.float64)
    out = errors_KQDD.copy()
    all_y, all_x, all_count = sum_y.sum(0), sum_x.sum(0), count.sum(0)
    for k in range(K):
        beta = beta_KPQD[k].reshape(P, Q * D)
        train_residual = (all_y - sum_y[k]) - (all_x - sum_x[k]) @ beta
        mean = train_residual / ((all_count - count[k]) + shrinkage)[:, None]
        test_residual_QDV = (sum_y[k] - sum_x[k] @ beta).T.reshape(Q, D, V)
        mean_QVD = mean.T.reshape(Q, D, V).transpose(0, 2, 1)
        cross = test_residual_QDV @ mean_QVD  # batched over cells: BLAS, not einsum
        out[k] += ((mean_QVD.transpose(0, 2, 1) * count[k]) @ mean_QVD
                   - cross - cross.transpose(0, 2, 1))
    return out


@dataclass(frozen=True)
class Bound:
    """Gaussian bounds from out-of-fold errors: pooled over all pictures, and fold by fold."""

    entropy: np.ndarray  # [Q] nats, from every picture's residual
    per_fold: np.ndarray  # [K, Q] nats, from each fold's residuals alone


def bound_from_errors(errors_KQDD: np.ndarray, counts_K: np.ndarray, floor: float) -> Bound:
    floor_DD = floor * np.eye(errors_KQDD.shape[-1])
    pooled = errors_KQDD.sum(0) / counts_K.sum() + floor_DD
    return Bound(gaussian_bound(pooled),
                 gaussian_bound(errors_KQDD / counts_K[:, None, None, None] + floor_DD))


@dataclass(frozen=True)
class EstimatedMap:
    """Figure 9 by the paper's estimator for one reference cell; maps are [G, G] nats, bounds on
    the differential entropy of a cell's D-dimensional codebook feature (so they can be < 0)."""

    cell: tuple[int, int]  # (row, col) of the reference cell
    pictures: int  # real pictures the statistics come from
    prior_entropy: np.ndarray  # bound with nothing known (each cell's feature covariance)
    entropy: np.ndarray  # bound given the reference cell's feature; NaN at the cell (-inf)
    null_information: np.ndarray  # information measured with the reference shuffled across
    # pictures (no dependency left): the estimator's bias and noise, cell by cell
    error: float  # |mean| + error_sigmas * spread of the null: the information's stated error

    @property
    def information(self) -> np.ndarray:
        """How much the reference cell's feature lowers each cell's bound (nats)."""
        return self.prior_entropy - self.entropy


class DependencyEstimator:
    """The estimator over one set of pictures' token features [N, G*G, D]; the per-fold second
    moments every map shares are computed once."""

    def __init__(self, features_NLD: np.ndarray, config: EstimatorConfig = EstimatorConfig()):
        N, L, D = features_NLD.shape
        self.grid = int(round(L ** 0.5))
        if self.grid * self.grid != L:
            raise ValueError(f"features must cover a square grid, got {L} cells")
        self.config = config
        self.features = features_NLD
        self.fold = fold_of_each(N, config)
        self.counts = np.bincount(self.fold, minlength=config.folds).astype(np.float64)
        self.flat = features_NLD.reshape(N, L * D)
        # [K, L, D, D] each cell's second moment per fold: the Y^T Y of every target
        self.yy = np.stack([np.einsum("nli,nlj->lij", features_NLD[self.fold == k],
                                      features_NLD[self.fold == k], optimize=True)
                            for k in range(config.folds)])

    @property
    def pictures(self) -> int:
        return len(self.features)

    def ridge_per_fold(self) -> np.ndarray:
        return self.config.ridge * (self.counts.sum() - self.counts)

    def _bound_given(self, x_NP: np.ndarray, token_N: np.ndarray | None = None) -> Bound:
        """The bound of every cell given the predictors x (a constant column is added), and the
        per-token correction when the picture's reference `token_N` is given."""
        N, L, D = self.features.shape
        x = np.concatenate([np.ones((N, 1)), x_NP], axis=1)
        K = self.config.folds
        xx = per_fold(self.fold, K, x, x)
        xy = per_fold(self.fold, K, x, self.flat).reshape(K, x.shape[1], L, D)
        beta = out_of_fold_fit(xx, xy, self.ridge_per_fold())
        errors = fold_errors(beta, xx, xy, self.yy)
        if token_N is not None and self.config.token_shrinkage is not None:
            errors = token_corrected_errors(errors, beta, x, self.flat, self.fold, token_N,
                                            self.config.token_shrinkage)
        return bound_from_errors(errors, self.counts, self.config.variance_floor)

    @functools.cached_property
    def prior(self) -> Bound:
        """Each cell's bound with nothing known: its out-of-fold covariance about the mean."""
        return self._bound_given(np.zeros((self.pictures, 0)))

    def check_cell(self, cell: tuple[int, int]) -> tuple[int, int]:
        row, col = (int(v) for v in cell)
        if not (0 <= row < self.grid and 0 <= col < self.grid):
            raise ValueError(f"cell must be (row, col) with both in 0..{self.grid - 1}, got {cell}")
        return row, col

    def dependency_map(self, cell: tuple[int, int]) -> EstimatedMap:
        row, col = self.check_cell(cell)
        c, G = row * self.grid + col, self.grid
        reference = self.features[:, c]
        # the token behind each feature: features are codebook rows, one per token
        token = np.unique(reference, axis=0, return_inverse=True)[1].ravel()
        shuffle = np.random.default_rng(self.config.seed + 1).permutation(self.pictures)
        prior = self.prior.entropy
        given = self._bound_given(reference, token).entropy
        null = prior - self._bound_given(reference[shuffle], token[shuffle]).entropy
        given[c] = np.nan
        null[c] = np.nan
        others = np.delete(null, c)
        error = abs(others.mean()) + self.config.error_sigmas * others.std()
        return EstimatedMap(cell=(row, col), pictures=self.pictures,
                            prior_entropy=prior.reshape(G, G), entropy=given.reshape(G, G),
                            null_information=null.reshape(G, G), error=float(error))
