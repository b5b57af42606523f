import numpy as np
import pytest

from par_demo.orders import ScheduleError, ScheduleSpec, build_schedule, par_sequence_order
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
