import numpy as np
import pytest

from par_demo.models.slots import CLASS, FILLER, TOKEN, slot_layout
from par_demo.orders import Schedule, ScheduleSpec, build_schedule


def test_par_4x_layout_is_the_official_sequence():
    """[class, x0, x1, x2, x3, spe0, spe1, spe2, x4, ...] with x in PAR order."""
    schedule = build_schedule(ScheduleSpec(grid=8, order="distant", parallel=4))
    layout = slot_layout(schedule)
    seq = schedule.sequence
    assert len(layout.kind) == 64
    assert layout.kind[:8].tolist() == [CLASS, TOKEN, TOKEN, TOKEN, TOKEN, FILLER, FILLER, FILLER]
    assert layout.cell[1:5].tolist() == seq[:4].tolist()
    assert layout.filler[5:8].tolist() == [0, 1, 2]
    assert layout.cell[8:].tolist() == seq[4:60].tolist()
    assert np.array_equal(layout.target, seq)
    assert layout.num_fillers == 3


def test_mask_is_causal_then_blockwise():
    schedule = build_schedule(ScheduleSpec(grid=8, order="distant", parallel=4))
    mask = slot_layout(schedule).block_causal_mask()
    assert np.array_equal(mask[:4, :4], np.tril(np.ones((4, 4), bool)))
    assert mask[4:8, :8].all() and not mask[4:8, 8:].any()
    assert mask[8:12, :12].all() and not mask[8:12, 12:].any()


def test_layout_without_initial_tokens_starts_with_fillers():
    schedule = build_schedule(ScheduleSpec(grid=8, order="raster", parallel=16, init_tokens=False))
    layout = slot_layout(schedule)
    assert layout.kind[:16].tolist() == [CLASS] + [FILLER] * 15
    assert layout.kind[16:].tolist() == [TOKEN] * 48
    assert layout.starts.tolist() == [0, 16, 32, 48, 64]


def test_llamagen_layout_feeds_the_previous_raster_token():
    layout = slot_layout(build_schedule(ScheduleSpec(grid=4, order="raster", parallel=1)))
    assert layout.cell.tolist() == [-1] + list(range(15))
    assert layout.target.tolist() == list(range(16))


def test_a_shrinking_step_feeds_every_token_of_the_step_before():
    spec = ScheduleSpec(grid=2, order="raster", parallel=1)
    shrinking = Schedule(spec, (np.array([0, 1]), np.array([2]), np.array([3])))
    layout = slot_layout(shrinking)
    # step 1 feeds cells 0 and 1 (the second slot only feeds), step 2 feeds cell 2
    assert layout.starts.tolist() == [0, 2, 4, 5]
    assert layout.predicting.tolist() == [2, 1, 1]
    assert layout.cell.tolist() == [-1, -1, 0, 1, 2]
    assert layout.target.tolist() == [0, 1, 2, 2, 3]
    assert layout.length == 5


@pytest.mark.parametrize("spec", [ScheduleSpec(grid=8, order="diagonal", parallel=1),
                                  ScheduleSpec(grid=8, order="zipar", parallel=1, window=2),
                                  ScheduleSpec(grid=8, order="random-cosine", parallel=1,
                                               steps=12, seed=1)], ids=lambda s: s.label)
def test_rival_layouts_feed_every_cell_but_the_last_steps_once(spec):
    schedule = build_schedule(spec)
    layout = slot_layout(schedule)
    fed = layout.cell[layout.kind == TOKEN]
    assert sorted(fed.tolist()) == sorted(np.concatenate(schedule.steps[:-1]).tolist())
    for t, cells in enumerate(schedule.steps):
        s0 = layout.starts[t]
        assert layout.target[s0:s0 + len(cells)].tolist() == cells.tolist()
        assert set(layout.target[s0:layout.starts[t + 1]]) == set(cells.tolist())


def test_kept_cells_come_first_as_a_chain_of_single_steps():
    from par_demo.orders import subset_schedule

    schedule = subset_schedule(ScheduleSpec(grid=4, order="raster", parallel=4), [10, 11, 14, 15])
    layout = slot_layout(schedule)
    kept = schedule.kept_cells.tolist()  # the 12 other cells, in raster order
    assert layout.kept_steps == 12 and layout.kind.size == 16
    assert layout.target[:12].tolist() == kept and layout.cell[1:13].tolist() == kept
    assert layout.kind[0] == CLASS and (layout.kind[1:13] == TOKEN).all()
    # the schedule's steps follow: 4 initial tokens, the first fed by the last kept cell
    assert layout.target[12:].tolist() == [10, 11, 14, 15] and layout.starts[-5:].tolist() == [
        12, 13, 14, 15, 16]
    assert np.array_equal(layout.visible(0, 16), layout.block_causal_mask())
    assert np.array_equal(layout.visible(12, 14), layout.block_causal_mask()[12:14, :14])
