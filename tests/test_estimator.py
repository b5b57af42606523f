"""The paper's estimator (Sec. 8.1): Gaussian bounds of out-of-fold least-squares residuals over
real pictures' codebook features. Checked against data whose dependencies are known exactly."""
import numpy as np
import pytest

from par_demo.estimator import (DependencyEstimator, EstimatorConfig, codebook_features,
                                gaussian_bound)
from par_demo.estimator_orders import FoldGram, context_radius_bounds, entropy_increase
from par_demo.heldout import HeldoutGrids, file_sha256
from par_demo.checkpoints import weight_file
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.presets import EMBEDDED
from par_demo.training_codes import (FIGURE11_ORDERINGS, TrainingCodes, shipped_estimator,
                                     shipped_maps, shipped_orderings)

GRID, VOCAB, DIM = 6, 48, 8


def unit_codebook(seed: int = 0) -> np.ndarray:
    book = np.random.default_rng(seed).normal(size=(VOCAB, DIM))
    return book / np.linalg.norm(book, axis=1, keepdims=True)


def row_chains(pictures: int, copy: float, seed: int = 0) -> np.ndarray:
    """Token grids where each cell copies its left neighbour's token with probability `copy`
    (else draws a fresh one): a dependency along rows that fades with distance, none across."""
    g = np.random.default_rng(seed)
    codes = g.integers(0, VOCAB, (pictures, GRID, GRID))
    for c in range(1, GRID):
        keep = g.random((pictures, GRID)) < copy
        codes[:, :, c] = np.where(keep, codes[:, :, c - 1], codes[:, :, c])
    return codes


def test_the_bound_is_the_gaussian_entropy_and_least_squares_finds_a_linear_dependency():
    g = np.random.default_rng(0)
    cov = np.array([[2.0, 0.3], [0.3, 0.5]])
    assert gaussian_bound(cov) == pytest.approx(0.5 * np.log((2 * np.pi * np.e) ** 2 * 0.91))
    # two cells of Gaussian features: y = A x + noise, so H(y | x) is the noise's entropy
    noise = np.diag([0.1, 0.2, 0.05])
    A = g.normal(size=(3, 3))
    x = g.normal(size=(20_000, 3))
    y = x @ A.T + g.normal(size=(20_000, 3)) @ np.sqrt(noise)
    estimator = DependencyEstimator(np.stack([x, y, np.zeros_like(x) + g.normal(
        size=x.shape), g.normal(size=x.shape)], axis=1))
    m = estimator.dependency_map((0, 0))
    assert m.entropy[0, 1] == pytest.approx(gaussian_bound(noise), abs=0.02)
    assert m.prior_entropy[0, 1] == pytest.approx(gaussian_bound(A @ A.T + noise), abs=0.02)
    assert abs(m.information[1, :]).max() < m.error  # independent cells


def test_the_estimator_finds_planted_neighbours_and_nothing_across_rows():
    estimator = DependencyEstimator(codebook_features(row_chains(3000, copy=0.7),
                                                      unit_codebook()))
    m = estimator.dependency_map((2, 2))
    along = m.information[2]  # the reference's row: 0.7 ** distance of the tokens are shared
    assert along[1] > 0.3 and along[3] > 0.3
    assert along[1] > along[0] + m.error and along[3] > along[4] + m.error > along[5] + m.error
    across = np.delete(m.information, 2, axis=0)
    assert np.abs(across).max() < m.error, "rows were drawn independently"
    assert m.error < 0.1 * along[1]


def test_the_learned_per_token_predictor_finds_a_dependency_least_squares_cannot():
    """The right neighbour's token is a fixed shuffle of the reference token: its feature is no
    linear function of the reference's (48 tokens in 8 dimensions), but a look-up of each
    token's mean finds all of it."""
    g = np.random.default_rng(5)
    codes = g.integers(0, VOCAB, (3000, GRID, GRID))
    codes[:, 2, 3] = g.permutation(VOCAB)[codes[:, 2, 2]]
    features = codebook_features(codes, unit_codebook())
    learned = DependencyEstimator(features).dependency_map((2, 2))
    linear = DependencyEstimator(features, EstimatorConfig(token_shrinkage=None)
                                 ).dependency_map((2, 2))
    assert learned.information[2, 3] > linear.information[2, 3] + 1.0
    others = np.delete(learned.information.ravel(), [2 * GRID + 2, 2 * GRID + 3])
    assert np.abs(others).max() < learned.error


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_information_is_never_negative_beyond_the_stated_error(seed):
    estimator = DependencyEstimator(codebook_features(row_chains(1500, copy=0.0, seed=seed),
                                                      unit_codebook(seed)),
                                    EstimatorConfig(seed=seed))
    for cell in [(0, 0), (3, 4), (5, 5)]:
        m = estimator.dependency_map(cell)
        info = np.delete(m.information.ravel(), cell[0] * GRID + cell[1])
        assert info.min() >= -m.error, "nothing depends on anything here: only noise and bias"
        # out of fold, fitting noise loosens the bound: least squares fitted and scored on the
        # same pictures would report about d * p / 2N nats of information here instead
        assert info.mean() < 0


def test_a_cell_whose_token_never_changes_keeps_every_bound_finite():
    codes = row_chains(200, copy=0.5)
    codes[:, 0, 0] = 7  # a background corner: one token in every picture
    m = DependencyEstimator(codebook_features(codes, unit_codebook())).dependency_map((0, 1))
    assert np.isfinite(np.delete(m.information.ravel(), 1)).all() and np.isfinite(m.error)
    assert m.prior_entropy[0, 0] < m.prior_entropy[1:].min() - 10  # near certain, not -inf


def test_bad_inputs_name_the_field():
    with pytest.raises(ValueError, match="folds must be 2 or more"):
        EstimatorConfig(folds=1)
    with pytest.raises(ValueError, match="codes must be in 0..47"):
        codebook_features(np.full((3, 2, 2), VOCAB), unit_codebook())
    with pytest.raises(ValueError, match=r"codes must be \[pictures, G, G\]"):
        codebook_features(np.zeros((3, 4)), unit_codebook())
    with pytest.raises(ValueError, match="at least 10 pictures"):
        DependencyEstimator(codebook_features(row_chains(9, 0.5), unit_codebook()))
    estimator = DependencyEstimator(codebook_features(row_chains(50, 0.5), unit_codebook()))
    with pytest.raises(ValueError, match="cell must be"):
        estimator.dependency_map((0, GRID))
    with pytest.raises(ValueError, match="the pictures' is 6x6"):
        entropy_increase(FoldGram(estimator), ScheduleSpec(grid=4))


def test_figure11_finds_the_cost_of_generating_planted_neighbours_together():
    """Rows are chains: raster 4x generates runs of a row together, so most cells lose their left
    neighbour; distant 4x groups cells 3 apart, whose tokens are shared far less often."""
    gram = FoldGram(DependencyEstimator(codebook_features(row_chains(3000, copy=0.7),
                                                          unit_codebook())))
    raster, distant = (entropy_increase(gram, ScheduleSpec(grid=GRID, order=order, parallel=4,
                                                           init_tokens=False), context_radius=1)
                       for order in ("raster", "distant"))
    assert raster.mean_increase > 0.3
    assert 0 < distant.mean_increase < 0.5 * raster.mean_increase
    first = build_schedule(raster.spec).steps[0][0]
    assert raster.increase.flat[first] == 0  # the first of its step loses nothing
    assert raster.error < 0.1 * raster.mean_increase


# ---------------------------------------------------------------- the shipped training codes

@pytest.fixture(scope="module")
def shipped():
    return shipped_estimator()


def test_the_shipped_codes_are_training_pictures_of_the_shipped_tokenizer():
    codes = TrainingCodes.load()
    assert codes.tokenizer_sha256 == file_sha256(weight_file(EMBEDDED.tokenizer.weights,
                                                             download=False)), \
        "rebuild it: python -m par_demo.train.training_codes (see its docstring)"
    assert codes.codes.shape[1:] == (EMBEDDED.args.grid,) * 2
    assert codes.codes.max() < codes.codebook_size == EMBEDDED.args.vocab_size
    training = {grid.tobytes() for grid in codes.codes}
    heldout = HeldoutGrids.load().codes
    assert not any(grid.tobytes() in training for grid in heldout), "a held-out picture leaked"


def test_the_shipped_maps_are_the_estimators_on_the_shipped_codes(shipped):
    maps = shipped_maps()
    assert maps.config == repr(EstimatorConfig()), \
        "rebuild them: python -m par_demo.train.training_codes (see its docstring)"
    assert maps.pictures == shipped.pictures
    for cell in [(4, 8), (15, 0)]:
        live, stored = shipped.dependency_map(cell), maps.map(cell)
        np.testing.assert_allclose(stored.entropy, live.entropy, atol=1e-4)
        np.testing.assert_allclose(stored.prior_entropy, live.prior_entropy, atol=1e-4)
        assert stored.error == pytest.approx(live.error, abs=1e-6)


def test_every_cell_of_the_shipped_maps_puts_its_neighbours_ahead():
    maps = shipped_maps()
    G = maps.prior_entropy.shape[0]
    rows, cols = np.indices((G, G))
    for c in range(G * G):
        m = maps.map(divmod(c, G))
        distance = np.maximum(abs(rows - m.cell[0]), abs(cols - m.cell[1]))
        near, far = m.information[distance == 1].mean(), m.information[distance >= 4].mean()
        assert near > far + m.error, m.cell
        assert np.nanmin(m.information) >= -m.error, m.cell


@pytest.mark.parametrize("cell", [(2, 3), (8, 8), (15, 15)])
def test_the_papers_trend_on_the_shipped_emoji_neighbours_tell_more_than_far_cells(shipped,
                                                                                     cell):
    m = shipped.dependency_map(cell)
    rows, cols = np.indices(m.entropy.shape)
    distance = np.maximum(abs(rows - cell[0]), abs(cols - cell[1]))
    near, two, far = (m.information[distance == 1].mean(), m.information[distance == 2].mean(),
                      m.information[distance >= 4].mean())
    assert near > two + m.error > far + 2 * m.error
    assert np.nanmin(m.information) >= -m.error


@pytest.fixture(scope="module")
def shipped_gram(shipped):
    return FoldGram(shipped)


def test_the_shipped_orderings_are_the_estimators_on_the_shipped_codes(shipped_gram):
    stored = shipped_orderings()
    assert [(r.spec.order, r.spec.parallel, r.spec.init_tokens) for r in stored] == list(
        FIGURE11_ORDERINGS)
    live = entropy_increase(shipped_gram, stored[0].spec)
    np.testing.assert_allclose(stored[0].increase, live.increase, atol=1e-6)
    assert stored[0].context_radius == live.context_radius


def test_distant_orders_lose_less_than_raster_on_the_shipped_emoji(shipped_gram):
    by_spec = {(r.spec.order, r.spec.parallel, r.spec.init_tokens): r
               for r in shipped_orderings()}
    for parallel in (4, 16):
        for init in (True, False):
            distant, raster = by_spec["distant", parallel, init], by_spec["raster", parallel, init]
            assert raster.mean_increase > 3 * distant.mean_increase + raster.error + distant.error
    bounds = context_radius_bounds(shipped_gram, (1, 2))
    assert bounds[2] < bounds[1]
