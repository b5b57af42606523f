import numpy as np

from par_demo.figure3 import CURRENT_RGB, PENDING_RGB, REGION_RGB, draw_schedule, step_colors
from par_demo.orders import ScheduleSpec, build_schedule

DISTANT = build_schedule(ScheduleSpec(grid=8, order="distant", parallel=4))
RASTER = build_schedule(ScheduleSpec(grid=8, order="raster", parallel=4))


def cell_centre(img: np.ndarray, cell: int, grid: int) -> tuple:
    px = img.shape[0] // grid
    r, c = divmod(cell, grid)
    # a quarter in from the corner: clear of numbers and outlines
    return tuple(img[r * px + px // 4, c * px + px // 4])


def test_cells_are_coloured_by_step():
    img = np.asarray(draw_schedule(DISTANT, size=256, numbers=False))
    colors = step_colors(DISTANT.num_steps)
    for cell in [0, 5, 37, 63]:
        assert cell_centre(img, cell, 8) == tuple(colors[DISTANT.step_of_cell.reshape(-1)[cell]])


def test_progress_marks_done_current_and_pending():
    step = 6
    img = np.asarray(draw_schedule(DISTANT, size=256, progress=step, numbers=False))
    steps = DISTANT.step_of_cell.reshape(-1)
    colors = step_colors(DISTANT.num_steps)
    for cell in range(64):
        expected = (colors[steps[cell]] if steps[cell] < step else
                    CURRENT_RGB if steps[cell] == step else PENDING_RGB)
        assert cell_centre(img, cell, 8) == tuple(expected)


def test_region_boundaries_are_dashed_for_distant_only():
    def boundary_pixels(schedule):
        img = np.asarray(draw_schedule(schedule, size=256, numbers=False))
        return (img[:, 127:129] == REGION_RGB).all(-1).sum()

    dashed = boundary_pixels(DISTANT)
    assert 100 < dashed < 2 * 256  # a dashed line covers part of the boundary, not all of it
    assert boundary_pixels(RASTER) == 0


def test_step_numbers_are_drawn_when_cells_are_large_enough():
    with_numbers = np.asarray(draw_schedule(DISTANT, size=256))
    without = np.asarray(draw_schedule(DISTANT, size=256, numbers=False))
    assert (with_numbers != without).any()
    small = build_schedule(ScheduleSpec(grid=24, order="distant", parallel=4))
    assert np.array_equal(np.asarray(draw_schedule(small, size=240)),
                          np.asarray(draw_schedule(small, size=240, numbers=False)))


def test_overlay_keeps_done_cells_and_veils_pending_ones():
    picture = np.zeros((64, 64, 3), np.uint8)
    picture[..., 1] = 200
    img = np.asarray(draw_schedule(DISTANT, size=256, progress=10, image=picture))
    steps = DISTANT.step_of_cell.reshape(-1)
    done = next(c for c in range(64) if steps[c] < 10 and steps[c] >= 4)
    pending = next(c for c in range(64) if steps[c] > 10)
    assert cell_centre(img, done, 8) == (0, 200, 0)
    assert cell_centre(img, pending, 8)[0] > 150  # mostly the light pending grey


def test_kept_cells_are_marked_and_regions_are_those_of_the_masked_cells():
    from par_demo.figure3 import KEPT_RGB
    from par_demo.masks import region_mask
    from par_demo.orders import subset_schedule

    schedule = subset_schedule(ScheduleSpec(grid=16, order="distant", parallel=4),
                               region_mask("right", 16).cells)
    img = np.asarray(draw_schedule(schedule, size=256, numbers=False))
    colors = step_colors(schedule.num_steps)
    steps = schedule.step_of_cell.reshape(-1)
    for cell in [0, 7, 8, 100, 255]:
        expected = KEPT_RGB if steps[cell] < 0 else tuple(colors[steps[cell]])
        assert cell_centre(img, cell, 16) == tuple(expected)
    dashes = (img == REGION_RGB).all(-1)
    assert dashes[:, 190:194].any(0).any() and dashes[126:130, 128:].any()  # at col 12, row 8
    assert not dashes[:, :126].any()  # no region line crosses the kept half

    picture = np.full((64, 64, 3), 77, np.uint8)
    for progress in (None, 3):
        over = np.asarray(draw_schedule(schedule, size=256, progress=progress, image=picture))
        assert cell_centre(over, 0, 16) == (77, 77, 77)  # the picture shows through, unveiled
