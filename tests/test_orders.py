import numpy as np
import pytest

from par_demo.orders import (RIVAL_ORDERS, ScheduleError, ScheduleSpec, build_schedule,
                             par_sequence_order)
from par_demo.rivals import zipar_step_count
from support import TRANSFORMER_CASES, golden_expected


@pytest.mark.parametrize("order,parallel,init,steps", [
    ("raster", 1, True, 576),
    ("distant", 4, True, 147),
    ("distant", 4, False, 144),
    ("distant", 16, True, 51),
    ("distant", 16, False, 36),
    ("raster", 4, True, 147),
    ("raster", 4, False, 144),
    ("random", 4, True, 147),
    ("distant", 1, True, 576),
])
def test_step_counts_on_24x24_and_every_cell_once(order, parallel, init, steps):
    schedule = build_schedule(ScheduleSpec(grid=24, order=order, parallel=parallel,
                                           init_tokens=init))
    assert schedule.num_steps == steps
    assert sorted(schedule.sequence.tolist()) == list(range(576))
    init_steps = parallel if (init and parallel > 1) else 0
    assert schedule.sizes == [1] * init_steps + [parallel] * (steps - init_steps)
    assert schedule.num_init_steps == init_steps


def test_par_order_follows_the_official_formula():
    G, s = 24, 2
    R = G // s
    expected = np.empty(G * G, dtype=np.int64)
    for r1 in range(s):
        for r2 in range(s):
            for lr in range(R):
                for lc in range(R):
                    expected[((lr * R + lc) * s + r1) * s + r2] = (r1 * R + lr) * G + r2 * R + lc
    assert np.array_equal(par_sequence_order(G, s), expected)


@pytest.mark.parametrize("case", ["par_tiny_4x", "par_tiny_16x"])
def test_distant_schedule_is_the_official_sequence(case):
    """The reference generate() emits tokens in PAR order; laid out by our schedule they must
    give the reference's row-major grid."""
    n = TRANSFORMER_CASES[case]
    schedule = build_schedule(ScheduleSpec(grid=8, order="distant", parallel=n))
    expected = golden_expected(case)
    for cfg in ("1.0", "1.5"):
        seq = expected[f"greedy_cfg{cfg}_par_order"].numpy()
        grid = np.empty_like(seq)
        grid[:, schedule.sequence] = seq
        assert np.array_equal(grid, expected[f"greedy_cfg{cfg}_raster"].numpy())


def test_distant_steps_take_one_cell_per_region():
    schedule = build_schedule(ScheduleSpec(grid=24, order="distant", parallel=16))
    for cells in schedule.steps[16:]:
        rows, cols = np.divmod(cells, 24)
        regions = (rows // 6) * 4 + cols // 6
        assert sorted(regions.tolist()) == list(range(16))
        assert len(set(zip(rows % 6, cols % 6))) == 1


def test_initial_tokens_are_the_first_group_one_by_one():
    with_init = build_schedule(ScheduleSpec(grid=24, order="distant", parallel=4))
    without = build_schedule(ScheduleSpec(grid=24, order="distant", parallel=4, init_tokens=False))
    assert np.array_equal(np.concatenate(with_init.steps[:4]), without.steps[0])
    assert np.array_equal(with_init.sequence, without.sequence)


def test_random_order_is_seeded():
    a = build_schedule(ScheduleSpec(grid=16, order="random", parallel=4, seed=3))
    b = build_schedule(ScheduleSpec(grid=16, order="random", parallel=4, seed=3))
    c = build_schedule(ScheduleSpec(grid=16, order="random", parallel=4, seed=4))
    assert a == b and a != c


def test_distant_1x_is_the_par_order_one_token_per_step():
    schedule = build_schedule(ScheduleSpec(grid=16, order="distant", parallel=1))
    assert schedule.num_steps == 256
    assert np.array_equal(schedule.sequence, par_sequence_order(16, 2))


def test_step_of_cell_inverts_the_steps():
    schedule = build_schedule(ScheduleSpec(grid=8, order="raster", parallel=4, init_tokens=False))
    assert schedule.step_of_cell.tolist() == [[2 * r, 2 * r, 2 * r, 2 * r,
                                               2 * r + 1, 2 * r + 1, 2 * r + 1, 2 * r + 1]
                                              for r in range(8)]


@pytest.mark.parametrize("spec,message", [
    (ScheduleSpec(grid=24, order="distant", parallel=3), "square"),
    (ScheduleSpec(grid=24, order="distant", parallel=25), "do not divide"),
    (ScheduleSpec(grid=24, order="distant", parallel=1, regions=5), "regions per side do not divide"),
    (ScheduleSpec(grid=24, order="distant", parallel=4, regions=3), "needs 2 regions"),
    (ScheduleSpec(grid=5, order="raster", parallel=4), "do not divide"),
    (ScheduleSpec(grid=24, order="spiral", parallel=4), "unknown order"),
    (ScheduleSpec(grid=24, order="raster", parallel=0), "at least 1"),
])
def test_invalid_requests_raise_clear_errors(spec, message):
    with pytest.raises(ScheduleError, match=message):
        build_schedule(spec)


RIVAL_SPECS = [dict(order="zipar", window=1), dict(order="zipar", window=3),
               dict(order="diagonal"), dict(order="random-cosine", steps=1),
               dict(order="random-cosine", steps=31, seed=4)]


@pytest.mark.parametrize("grid", [1, 2, 5, 16, 24])
@pytest.mark.parametrize("fields", RIVAL_SPECS, ids=str)
def test_every_rival_schedule_covers_every_cell_once(grid, fields):
    if fields.get("window", 0) > grid or fields.get("steps", 0) > grid * grid:
        pytest.skip("a field beyond the grid (refused below)")
    schedule = build_schedule(ScheduleSpec(grid=grid, parallel=1, **fields))
    assert sorted(schedule.sequence.tolist()) == list(range(grid * grid))
    assert min(schedule.sizes) >= 1


def zipar_by_its_rule(grid: int, window: int) -> list[list[int]]:
    """ZipAR's loop, step by step: row 0 alone until it is whole, then each active row takes
    its next token, and row r + 1 joins once row r holds `window` tokens."""
    made = [0] * grid
    active = [0]
    steps = []
    while active:
        steps.append([r * grid + made[r] for r in active])
        for r in active:
            made[r] += 1
        joining = [r + 1 for r in active if r + 1 < grid and r + 1 not in active and (
            made[r] == grid if r == 0 else made[r] == window)]
        active = [r for r in active if made[r] < grid] + joining
    return steps


@pytest.mark.parametrize("grid", range(2, 13))
def test_zipar_steps_and_row_lags_follow_its_rule_for_every_window(grid):
    for window in range(1, grid + 1):
        schedule = build_schedule(ScheduleSpec(grid=grid, order="zipar", parallel=1,
                                               window=window))
        assert [s.tolist() for s in schedule.steps] == zipar_by_its_rule(grid, window)
        assert schedule.num_steps == 2 * grid + (grid - 2) * window == zipar_step_count(
            grid, window)
        first = schedule.step_of_cell[:, 0]
        assert first[1] == grid  # row 1 waits for row 0 whole
        assert np.all(np.diff(first[1:]) == window)  # then each row lags the one above by w
        assert np.all(schedule.step_of_cell == first[:, None] + np.arange(grid))


def test_zipar_at_the_released_defaults_takes_224_steps():
    assert build_schedule(ScheduleSpec(grid=24, order="zipar", parallel=1,
                                       window=8)).num_steps == 224


@pytest.mark.parametrize("grid", [2, 7, 16])
def test_zipar_with_the_whole_row_as_window_is_raster_1x(grid):
    zipar = build_schedule(ScheduleSpec(grid=grid, order="zipar", parallel=1, window=grid))
    assert zipar == build_schedule(ScheduleSpec(grid=grid, order="raster", parallel=1))


@pytest.mark.parametrize("grid", [1, 3, 16])
def test_the_diagonal_takes_one_antidiagonal_per_step(grid):
    schedule = build_schedule(ScheduleSpec(grid=grid, order="diagonal", parallel=1))
    assert schedule.num_steps == 2 * grid - 1
    rows, cols = np.indices((grid, grid))
    assert np.array_equal(schedule.step_of_cell, rows + cols)


@pytest.mark.parametrize("cells,steps", [(256, 31), (256, 8), (576, 48)])
def test_random_cosine_follows_randars_schedule(cells, steps):
    grid = int(cells ** 0.5)
    spec = ScheduleSpec(grid=grid, order="random-cosine", parallel=1, steps=steps, seed=9)
    schedule = build_schedule(spec)
    s = np.arange(steps)
    rule = np.minimum(np.floor((1 - np.cos(np.pi / 2 * (s + 1) / steps)) * cells) + 1, cells)
    assert np.all(np.diff(rule) > 0)  # these budgets need no step raised
    assert np.cumsum(schedule.sizes).tolist() == rule.astype(int).tolist()
    assert schedule == build_schedule(spec)
    assert schedule != build_schedule(ScheduleSpec(grid=grid, order="random-cosine",
                                                   parallel=1, steps=steps, seed=10))


@pytest.mark.parametrize("fields,field", [
    (dict(order="zipar"), "window"),
    (dict(order="zipar", window=0), "window"),
    (dict(order="zipar", window=17), "window"),
    (dict(order="raster", window=4), "window"),
    (dict(order="random-cosine"), "steps"),
    (dict(order="random-cosine", steps=257), "steps"),
    (dict(order="distant", steps=31), "steps"),
    (dict(order="diagonal", parallel=4), "parallelism"),
])
def test_rival_fields_are_checked_by_name(fields, field):
    fields = {"parallel": 1, **fields} if fields["order"] in RIVAL_ORDERS else fields
    with pytest.raises(ScheduleError, match=field):
        build_schedule(ScheduleSpec(grid=16, **fields))
