"""Dependency maps (Figure 9) and entropy increase by ordering (Figure 11): every number is the
entropy the sampler itself reports when it runs the order the query stands for, so a dropped or
misplaced reference token changes the maps."""
import numpy as np
import pytest
import torch

from par_demo.checkpoints import load_model, weight_file
from par_demo.classes import emoji_classes
from par_demo.dependency import (DependencyUnsupported, dependency_map, dependency_refusal,
                                 entropy_increase, information_by_distance, one_token_per_step,
                                 schedule_entropy)
from par_demo.dependency_figures import draw_dependency, draw_entropy_increase
from par_demo.heldout import HeldoutGrids, file_sha256
from par_demo.models.transformer import ModelArgs, Transformer
from par_demo.orders import Schedule, ScheduleSpec, build_schedule
from par_demo.presets import EMBEDDED
from par_demo.sampler import sample_steps
from par_demo.sampling import SamplingConfig
from par_demo.train.generator import teacher_forced_loss
from par_demo.train.teacher_forcing import layout_bank
from support import golden_args, golden_weights, tiny_released_preset

GRID = 4
GREEDY = SamplingConfig(greedy=True)


def any_order_model(seed: int = 0) -> Transformer:
    args = ModelArgs(dim=32, n_layer=2, n_head=2, multiple_of=16, vocab_size=24, grid=GRID,
                     num_classes=5, num_fillers=15, target_aware=True)
    g = torch.Generator().manual_seed(seed)
    model = Transformer(args).init_weights(g)
    torch.nn.init.normal_(model.output.weight, std=0.5, generator=g)  # init leaves it at zero
    return model.eval()


def order_run(model, order: list[int], class_id: int):
    """The last event of a greedy one-token-per-step run of `order` (entropy at temperature 1)."""
    spec = ScheduleSpec(grid=model.args.grid, order="random", parallel=1)
    schedule = Schedule(spec, tuple(np.array([c]) for c in order))
    *_, last = sample_steps(model, schedule, [class_id], GREEDY)
    return last


def then_the_rest(first: list[int], cells: int) -> list[int]:
    return first + [c for c in range(cells) if c not in first]


@pytest.fixture(scope="module")
def tiny():
    return any_order_model()


def test_the_maps_are_the_samplers_entropies_for_the_order_cell_then_each_other_cell(tiny):
    cells, clicked, class_id = GRID * GRID, 6, 2
    # the sampler's greedy first token at the clicked cell becomes the picture's token there
    tokens = order_run(tiny, then_the_rest([clicked], cells), class_id).tokens[0]
    result = dependency_map(tiny, tokens, divmod(clicked, GRID), class_id)
    for q in range(cells):
        prior = order_run(tiny, then_the_rest([q], cells), class_id).entropy[0, q]
        assert result.prior_entropy.flat[q] == pytest.approx(prior, abs=1e-5)
        if q == clicked:
            continue
        given = order_run(tiny, then_the_rest([clicked, q], cells), class_id).entropy[0, q]
        assert result.entropy.flat[q] == pytest.approx(given, abs=1e-5)
    assert result.entropy.flat[clicked] == 0
    assert (np.abs(np.delete(result.information.ravel(), clicked)) > 1e-4).all()


def test_the_map_follows_the_clicked_cells_token_and_nothing_else(tiny):
    g = np.random.default_rng(0)
    tokens = g.integers(0, 24, GRID * GRID)
    base = dependency_map(tiny, tokens, (1, 2), None)
    elsewhere = tokens.copy()
    elsewhere[np.arange(GRID * GRID) != 6] = (tokens[np.arange(GRID * GRID) != 6] + 5) % 24
    assert np.array_equal(dependency_map(tiny, elsewhere, (1, 2), None).entropy, base.entropy)
    changed = tokens.copy()
    changed[6] = (tokens[6] + 1) % 24
    moved = dependency_map(tiny, changed, (1, 2), None)
    assert np.array_equal(moved.prior_entropy, base.prior_entropy)
    assert (np.abs(np.delete((moved.entropy - base.entropy).ravel(), 6)) > 1e-5).all()
    other_cell = dependency_map(tiny, tokens, (2, 1), None)
    assert not np.allclose(other_cell.entropy, base.entropy)
    assert not np.allclose(dependency_map(tiny, tokens, (1, 2), 3).prior_entropy,
                           base.prior_entropy)


@pytest.mark.parametrize("spec", [
    ScheduleSpec(grid=GRID, order="distant", parallel=4, init_tokens=True),
    ScheduleSpec(grid=GRID, order="raster", parallel=16, init_tokens=False),
])
def test_entropy_increase_is_the_samplers_parallel_minus_one_per_step_entropy(tiny, spec):
    schedule = build_schedule(spec)
    *_, run = sample_steps(tiny, schedule, [1], GREEDY)
    *_, sequential = sample_steps(tiny, one_token_per_step(schedule), [1], GREEDY)
    grid = run.tokens[0]
    sequential_on_grid = schedule_entropy(tiny, one_token_per_step(schedule), grid, 1)
    result = entropy_increase(tiny, grid[None], np.array([1]), spec)
    np.testing.assert_allclose(result.parallel_entropy.ravel(), run.entropy[0], atol=1e-5)
    np.testing.assert_allclose(result.sequential_entropy, sequential_on_grid, atol=1e-5)
    # the first cell of the one-per-step run sees the same context as in the parallel run
    assert sequential.entropy[0, schedule.sequence[0]] == pytest.approx(
        result.sequential_entropy.flat[schedule.sequence[0]], abs=1e-5)
    alone = schedule.step_of_cell.ravel() < schedule.num_init_steps  # one per step in both
    assert np.abs(result.increase.ravel()[alone]).max(initial=0) < 1e-5
    assert np.abs(result.increase.ravel()[~alone]).min() > 1e-5


def test_losses_are_the_training_codes_teacher_forced_losses(tiny):
    g = np.random.default_rng(1)
    grids = g.integers(0, 24, (6, GRID, GRID))
    classes = np.array([0, 1, 2, 3, 4, 0])
    spec = ScheduleSpec(grid=GRID, order="distant", parallel=4, init_tokens=False)
    result = entropy_increase(tiny, grids, classes, spec)
    for schedule, loss in ((build_schedule(spec), result.parallel_loss),
                           (one_token_per_step(build_schedule(spec)), result.sequential_loss)):
        with torch.no_grad():
            expected = teacher_forced_loss(tiny, torch.as_tensor(grids).flatten(1),
                                           torch.as_tensor(classes), torch.zeros(6).long(),
                                           layout_bank([schedule]), torch.device("cpu"))
        assert loss == pytest.approx(float(expected), abs=1e-5)
    assert result.pictures == 6


def test_the_raster_baseline_is_one_baseline_for_every_ordering(tiny):
    grids = np.random.default_rng(4).integers(0, 24, (3, GRID, GRID))
    raster = entropy_increase(tiny, grids, None, ScheduleSpec(grid=GRID, order="raster",
                                                              parallel=4))
    distant = entropy_increase(tiny, grids, None, ScheduleSpec(grid=GRID, parallel=16),
                               baseline="raster 1x")
    assert distant.baseline == "raster 1x" and raster.baseline == "same order"
    np.testing.assert_array_equal(distant.sequential_entropy, raster.sequential_entropy)
    assert distant.sequential_loss == raster.sequential_loss
    with pytest.raises(ValueError, match="baseline must be one of same order, raster 1x"):
        entropy_increase(tiny, grids, None, ScheduleSpec(grid=GRID), baseline="random")


def test_bad_inputs_name_the_field(tiny):
    tokens = np.zeros(GRID * GRID, dtype=np.int64)
    with pytest.raises(ValueError, match="cell must be"):
        dependency_map(tiny, tokens, (0, GRID), None)
    with pytest.raises(ValueError, match="4x4"):
        dependency_map(tiny, np.zeros(9, dtype=np.int64), (0, 0), None)
    with pytest.raises(ValueError, match="tokens must be in 0..23"):
        dependency_map(tiny, tokens - 1, (0, 0), None)
    with pytest.raises(ValueError, match="class must be in 0..4"):
        dependency_map(tiny, tokens, (0, 0), 5)
    with pytest.raises(ValueError, match="one class per grid"):
        entropy_increase(tiny, tokens.reshape(1, GRID, GRID), np.array([0, 1]),
                         ScheduleSpec(grid=GRID, parallel=4))
    with pytest.raises(ValueError, match="the model's is 4x4"):
        entropy_increase(tiny, tokens.reshape(1, GRID, GRID), None, ScheduleSpec(grid=8))


def test_released_models_are_refused_and_answer_along_their_own_schedule():
    preset = tiny_released_preset("PAR-XL-4x", "par_tiny_4x", "test/par")
    reason = dependency_refusal(preset)
    assert "do not know which cell they predict" in reason and "distant 4x" in reason
    assert dependency_refusal(EMBEDDED) is None
    model = Transformer(golden_args("par_tiny_4x"))
    model.load_state_dict(golden_weights("par_tiny_4x"))
    model.eval()
    G = model.args.grid
    with pytest.raises(DependencyUnsupported, match="not target-aware"):
        dependency_map(model, np.zeros(G * G, dtype=np.int64), (0, 0), 0)
    with pytest.raises(DependencyUnsupported):
        entropy_increase(model, np.zeros((1, G, G), dtype=np.int64), None, preset.runs)
    schedule = preset.check(preset.runs)
    *_, run = sample_steps(model, schedule, [3], GREEDY)
    np.testing.assert_allclose(schedule_entropy(model, schedule, run.tokens[0], 3).ravel(),
                               run.entropy[0], atol=1e-4)


def test_distance_profile_averages_rings_around_the_clicked_cell(tiny):
    tokens = np.random.default_rng(2).integers(0, 24, GRID * GRID)
    m = dependency_map(tiny, tokens, (0, 0), None)
    profile = information_by_distance([m])
    assert list(profile) == [1, 2, 3]
    assert profile[3] == pytest.approx(float(m.information[3, :].sum() + m.information[:3, 3].sum())
                                       / 7)


def test_figures_draw_the_picture_and_one_map_per_ordering(tiny):
    tokens = np.random.default_rng(3).integers(0, 24, GRID * GRID)
    picture = np.full((64, 64, 3), 255, dtype=np.uint8)
    with_picture = draw_dependency(dependency_map(tiny, tokens, (1, 1), 0), picture)
    without = draw_dependency(dependency_map(tiny, tokens, (1, 1), 0))
    assert with_picture.width > without.width and with_picture.height == without.height
    results = [entropy_increase(tiny, tokens.reshape(1, GRID, GRID), None,
                                ScheduleSpec(grid=GRID, order=o, parallel=4))
               for o in ("raster", "distant")]
    assert draw_entropy_increase(results).mode == "RGB"
    with pytest.raises(ValueError, match="at least one"):
        draw_entropy_increase([])


# ---------------------------------------------------------------- the shipped model

@pytest.fixture(scope="module")
def shipped():
    return load_model(EMBEDDED, download=False).transformer


@pytest.fixture(scope="module")
def heldout():
    return HeldoutGrids.load()


def test_the_shipped_heldout_set_was_encoded_by_the_shipped_tokenizer(heldout):
    assert heldout.tokenizer_sha256 == file_sha256(weight_file(EMBEDDED.tokenizer.weights,
                                                               download=False)), \
        "rebuild it: python -m par_demo.train.heldout_codes (see its docstring)"
    assert heldout.codes.shape[1:] == (EMBEDDED.args.grid,) * 2
    assert set(heldout.labels) == set(range(len(emoji_classes())))  # the 32-way groups
    assert heldout.codes.max() < EMBEDDED.args.vocab_size == heldout.codebook_size


def test_the_shipped_model_map_is_the_samplers_entropy(shipped, heldout):
    clicked, q = 8 * 16 + 8, 8 * 16 + 9
    first = order_run(shipped, then_the_rest([clicked], 256), int(heldout.labels[0]))
    tokens = heldout.codes[0].ravel().copy()
    tokens[clicked] = first.tokens[0, clicked]
    result = dependency_map(shipped, tokens, (8, 8), int(heldout.labels[0]))
    given = order_run(shipped, then_the_rest([clicked, q], 256), int(heldout.labels[0]))
    assert result.entropy.flat[q] == pytest.approx(given.entropy[0, q], abs=1e-4)
    assert result.prior_entropy.flat[clicked] == pytest.approx(first.entropy[0, clicked], abs=1e-4)

