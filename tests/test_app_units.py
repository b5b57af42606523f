"""The app's callbacks and streams called directly (in-process, the real embedded model)."""
from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace

import gradio as gr
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from par_demo.checkpoints import local_weight_file
from par_demo.figure3 import CURRENT_RGB
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.presets import DEFAULT_MODEL, PRESETS, get_preset
from par_demo.preview import progress_overlay
from par_demo.ui import compare as cmp, generate as gen, understand as und, widgets as w
from par_demo.ui.errors import friendly
from par_demo.ui.explorer import MAX_ANIMATION_FRAMES, schedule_animation, schedule_figure
from par_demo.ui.export import MAX_FRAMES, export_compare, export_run, run_frames
from par_demo.ui.machine import MODELS, availability, gpu_available
from par_demo.ui.inputs import plan_compare, plan_run
from par_demo.ui.runs import compare_stream, compare_table, generation_stream

GRID = get_preset(DEFAULT_MODEL).args.grid
VOCAB = get_preset(DEFAULT_MODEL).args.vocab_size  # top-k's upper bound
RELEASED = [name for name, p in PRESETS.items() if p.runs is not None]
LAST_CLASS = len(get_preset(DEFAULT_MODEL).class_names()) - 1


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """As the app does on a 2-core machine (see models.configure_cpu_threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def plan(**overrides):
    args = dict(model=DEFAULT_MODEL, class_query="heart", parallel=4, order="distant",
                init_tokens=True, cfg=2.0, temperature=1.0, top_k=0, seed=0)
    args.update(overrides)
    return plan_run(**args)


def test_embedded_model_is_available_and_released_ones_say_why_not():
    states = availability()
    assert states[DEFAULT_MODEL].ok
    for name in RELEASED:
        preset, state = PRESETS[name], states[name]
        files = [preset.weights, preset.tokenizer.weights]
        missing = [f.filename for f in files if local_weight_file(f) is None]
        if missing:
            assert not state.ok and missing[0] in state.reason
            assert state.label == f"{name} (unavailable)"
        else:
            assert state.ok and state.on_cpu == (not gpu_available())


@pytest.mark.parametrize("overrides, message", [
    (dict(class_query="hippogriff"), "no class is called 'hippogriff'"),
    (dict(class_query=""), f"class must be a name or an index 0..{LAST_CLASS}, got ''"),
    (dict(parallel=9), "parallelism must be one of"),
    (dict(order="spiral"), "ordering must be one of"),
    (dict(temperature=0), "temperature must be in 0.05..10, got 0"),
    (dict(temperature=11), "temperature must be in 0.05..10, got 11"),
    (dict(cfg=None), "guidance scale must be a number in 0..20, got None"),
    (dict(top_k=100000), f"top-k must be in 0..{VOCAB}, got 100000"),
    (dict(seed=1.5), "seed must be a whole number in 0..2147483647, got 1.5"),
    (dict(init_tokens="no"), "initial tokens must be true or false, got 'no'"),
    (dict(parallel="4"), "parallelism must be a whole number in 1..16, got '4'"),
    (dict(class_query="x" * 100_000), "(100002 characters)"),
    (dict(model="no-such-model"), "unknown model"),
])
def test_plan_refuses_bad_input_with_a_reason(overrides, message):
    with pytest.raises(gr.Error) as info:
        plan(**overrides)
    assert message in info.value.message


def test_generate_check_disables_what_cannot_run():
    check = gen.generate_check(DEFAULT_MODEL, 4, "distant", True)
    assert check.run_button["interactive"] is True and "67 steps" in check.check
    assert check.init["interactive"] is True
    assert gen.generate_check(DEFAULT_MODEL, 1, "raster", True).init["interactive"] is False
    for name in RELEASED:
        runs = PRESETS[name].runs
        check = gen.generate_check(name, 16 if runs.parallel != 16 else 4, "raster", True)
        assert check.run_button["interactive"] is False and check.check.startswith("✗")
        # switching to it locks the schedule controls to the one it was trained for
        change = gen.model_changed(name, w.class_label(DEFAULT_MODEL, "heart"))
        assert change.parallel["value"] == runs.parallel
        assert change.parallel["interactive"] is False
        assert change.order["value"] == runs.order and change.init["interactive"] is False


def test_compare_check_needs_two_to_four_orderings():
    assert cmp.compare_check(DEFAULT_MODEL, ["distant 4x"]).run_button["interactive"] is False
    check = cmp.compare_check(DEFAULT_MODEL, ["raster 1x", "distant 4x"])
    assert check.run_button["interactive"] is True and "raster 1x: 256 steps" in check.check
    five = ["raster 1x", "distant 4x", "distant 16x", "raster 4x", "random 4x"]
    check = cmp.compare_check(DEFAULT_MODEL, five)
    assert check.run_button["interactive"] is False and "2 to 4" in check.check


def test_generation_streams_the_latest_state_and_stops_its_worker_when_closed():
    p = plan(parallel=16)
    steps = p.schedule.num_steps
    seen = [record.steps_done for record, _ in generation_stream(p, frame_interval=0.0)]
    # the steps run ahead of the display (in a step process): the first frame is whatever is
    # done when the display first looks, and every frame after it is newer
    assert seen[0] >= 1 and seen[-1] == steps and seen == sorted(set(seen))

    def workers() -> set:
        return {t for t in threading.enumerate() if t.name == "par-run"}

    before = workers()
    raster = plan(parallel=1, order="raster")
    stream = generation_stream(raster, frame_interval=0.0)
    record, views = next(stream)
    assert len(workers() - before) == 1  # the run's steps go on in their own worker
    stream.close()  # what a cancelled event does: the run ends between two steps
    assert not workers() - before  # ... which closing ended
    assert 1 <= record.steps_done < GRID * GRID and not record.complete
    assert views.image.shape == (256, 256, 3) and views.image.dtype == np.uint8

    done = export_run(record, overlay=False, frame_ms=50)
    assert iio.imread(done.gif, index=None).shape[0] == record.steps_done  # its steps, exported


def test_streamed_frames_are_throttled_but_always_end_on_the_last_step():
    p = plan(parallel=1, order="raster")
    yields = list(generation_stream(p, frame_interval=3600.0))
    first, last = (r.steps_done for r, _ in yields)  # the first frame, then only the last
    assert first < GRID * GRID == last


def test_replay_shows_every_recorded_step_as_it_streamed():
    streamed = list(generation_stream(plan(parallel=16), frame_interval=0.0))
    record = streamed[-1][0]
    assert record.steps_done == record.num_steps == len(record.tokens)  # every step recorded
    shown = w.replay_range(record).step
    assert shown["interactive"] and shown["maximum"] == shown["value"] == record.num_steps
    for snapshot, views in streamed:
        replayed = gen.replay(record, snapshot.steps_done)
        for name in ("image", "overlay", "tokens", "entropy"):
            assert np.array_equal(getattr(replayed.pictures, name), getattr(views, name)), name
    for bad in (0, record.num_steps + 1, 2.5, "3"):
        with pytest.raises(gr.Error, match="step must be"):
            gen.replay(record, bad)
    with pytest.raises(gr.Error, match="generate an image first"):
        gen.replay(None, 1)
    with pytest.raises(gr.Error, match="run a comparison first"):
        cmp.replay_comparison(None, True, 1)
    assert not w.replay_range(None).step["interactive"]


def test_a_refused_request_clears_the_previous_run():
    names = ("image", "overlay", "tokens", "entropy", "status", "details", "run", "step")
    fn, outputs = w.named(gen.refused, SimpleNamespace(**{n: n for n in names}), gen.Refused)
    sent = dict(zip(outputs, fn()))  # what Gradio is given for each component
    assert set(sent) == set(names)
    assert [sent[n] for n in ("image", "overlay", "tokens", "entropy", "run")] == [None] * 5
    assert "Not run" in sent["status"] and not sent["step"]["interactive"]
    assert cmp.compare_refused().records is None


def test_the_explorer_follows_the_model_and_clears_what_cannot_exist():
    assert und.explorer_grid(DEFAULT_MODEL).grid == GRID
    for name in RELEASED:
        assert und.explorer_grid(name).grid == get_preset(name).args.grid
    cleared = und.unexplored()
    assert cleared.figure is None and cleared.progress is None
    assert und.follow_animation(16, 4, "distant", True, 3, 67, 150, None).animation == gr.skip()
    assert und.follow_animation(7, 4, "distant", True, 3, 67, 150, "old.gif").animation is None
    assert und.follow_animation(8, 4, "distant", True, 3, 67, 150,
                                "old.gif").animation.endswith(".gif")
    explained = und.explore(7, 4, "distant", True)
    assert explained.figure is None and "do not divide a 7x7 grid" in explained.text


def test_a_long_run_exports_thinned_keeping_its_first_and_last_steps():
    record = list(generation_stream(plan(parallel=1, order="raster"), frame_interval=3600.0))[-1][0]
    done = export_run(record, overlay=False, frame_ms=50)
    assert (done.frames, done.steps) == (MAX_FRAMES, GRID * GRID)
    gif = iio.imread(done.gif, index=None)[..., :3].astype(int)
    assert gif.shape[0] == MAX_FRAMES
    loaded = MODELS.get(DEFAULT_MODEL)
    first, last = run_frames(loaded, record, False, 256, [0, GRID * GRID - 1])
    assert np.abs(gif[0] - first).mean() < 4 and np.abs(gif[-1] - last).mean() < 4  # one palette


def test_compare_runs_on_one_step_clock():
    cp = plan_compare(DEFAULT_MODEL, "heart", ["distant 16x", "distant 16x no-init"], 2.0, 1.0,
                      0, 3)
    steps = [s.num_steps for s in cp.schedules]
    ticks = list(compare_stream(cp, overlay=True, frame_interval=0.0))
    clocks = [max(r.steps_done for r in records) for records, _ in ticks]
    assert clocks[0] == 1 and clocks[-1] == max(steps) and clocks == sorted(set(clocks))
    for (records, frame), clock in zip(ticks, clocks):
        assert [r.steps_done for r in records] == [min(clock, n) for n in steps]
        assert frame.shape[1] == 2 * 192 + 6
    records = ticks[-1][0]
    rows = compare_table(records)
    assert [r[2] for r in rows] == steps == [31, 16]
    assert rows[0][7] == "—"  # no 1x run measured: no time speedup claimed
    rows = compare_table(records, baseline=10.0)
    assert rows[0][7] == pytest.approx(10.0 / records[0].elapsed, rel=0.01)

    done = export_compare(records, overlay=True, frame_ms=100)
    assert iio.imread(done.gif, index=None).shape[0] == max(steps)

    # the replay slider: every panel at the same tick, exactly as it streamed
    assert w.replay_range(records).step["maximum"] == max(steps)
    for (_, frame), clock in zip(ticks, clocks):
        assert np.array_equal(cmp.replay_comparison(records, True, clock).frame, frame)


def test_a_long_panel_label_puts_the_step_on_its_own_line_uncut():
    from par_demo.ui.views import PANEL_PX, panel

    picture = np.zeros((PANEL_PX, PANEL_PX, 3), np.uint8)
    short = panel(picture, "distant 4x", 66, 67)
    long = panel(picture, "seed 1146752776", 66, 67)
    assert long.shape[0] > short.shape[0]  # two caption lines
    assert (long[PANEL_PX:, -4:] == 255).all()  # no text reaches the panel's right edge
    # the layout is the same at every step: a panel keeps its height through a run
    assert panel(picture, "seed 1146752776", 0, 67).shape == long.shape


def test_finished_panels_are_clean_and_their_overlay_is_one_switch_away():
    cp = plan_compare(DEFAULT_MODEL, "heart", ["distant 16x", "raster 16x"], 2.0, 1.0, 0, 3)
    records, frame = list(compare_stream(cp, overlay=True, frame_interval=3600.0))[-1]
    last = max(r.steps_done for r in records)
    assert np.array_equal(cmp.replay_comparison(records, True, last).frame, frame)
    covered = cmp.replay_comparison(records, True, last, True).frame
    assert not np.array_equal(covered, frame)
    clean = cmp.replay_comparison(records, False, last, False).frame
    assert np.array_equal(clean, frame)  # finished: no overlay, whatever the streaming switch
    assert cmp.overlay_toggled(None, True, 1, True).frame.__class__ is type(gr.skip())


def test_the_explorer_says_where_the_initial_tokens_are():
    from par_demo.ui.explorer import describe

    raster = describe(build_schedule(ScheduleSpec(GRID, "raster", 16, True)))
    assert "one per region" not in raster.replace("not one per region", "")
    assert "top row" in raster
    assert "one per region" in describe(build_schedule(ScheduleSpec(GRID, "distant", 16, True)))


def test_schedule_explorer_draws_or_explains():
    image, text, steps = schedule_figure(24, 16, "distant", True)
    assert image.shape == (480, 480, 3) and steps == build_schedule(
        ScheduleSpec(24, "distant", 16, True)).num_steps
    with pytest.raises(gr.Error, match="do not divide a 7x7 grid"):
        schedule_figure(7, 4, "distant", True)
    gif = schedule_animation(32, 1, "raster", False, 20)
    assert iio.imread(gif, index=None).shape[0] <= MAX_ANIMATION_FRAMES + 1


def _has_current_marking(frame: np.ndarray) -> bool:
    return bool((frame == np.array(CURRENT_RGB, np.uint8)).all(-1).any())


def test_a_finished_run_marks_no_cell_as_current():
    """Live views and exports draw with one drawer: red marks the step being generated while the
    run goes on, and the last frame shows the whole schedule instead."""
    schedule = build_schedule(ScheduleSpec(GRID, "distant", 4, True))
    black = np.zeros((256, 256, 3), np.uint8)
    assert _has_current_marking(progress_overlay(schedule, black, schedule.num_steps - 2))
    assert not _has_current_marking(progress_overlay(schedule, black, schedule.num_steps - 1))

    p = plan(parallel=16)
    record, views = list(generation_stream(p, frame_interval=3600.0))[-1]
    assert record.complete and not _has_current_marking(views.overlay)
    done = export_run(record, overlay=True, frame_ms=50)
    frames = iio.imread(done.gif, index=None)
    assert _has_current_marking(frames[-2]) and not _has_current_marking(frames[-1])


def test_only_the_projects_refusals_become_messages_and_bugs_are_logged(caplog):
    @friendly
    def refuses():
        plan(class_query="hippogriff")

    @friendly
    def has_a_bug():
        return {}["no such key"]

    with pytest.raises(gr.Error) as info:
        refuses()
    assert info.value.title == "Unknown class"
    with caplog.at_level(logging.ERROR, logger="par_demo.ui"), pytest.raises(gr.Error) as info:
        has_a_bug()
    assert info.value.title == "Server error" and "no such key" not in info.value.message
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


def test_a_loaded_run_streams_no_more_frames_than_its_display_rate():
    """Two runs at once: each streams at most one frame per interval (plus the first and the
    last), whatever the load, rather than a frame for every step that came due while waiting."""
    interval = 0.05
    counts = {}

    def stream(name):
        started = time.perf_counter()
        frames = sum(1 for _ in generation_stream(plan(parallel=1, order="raster"), interval))
        counts[name] = (frames, time.perf_counter() - started)

    runs = [threading.Thread(target=stream, args=(i,)) for i in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    for frames, seconds in counts.values():
        assert frames <= seconds / interval + 2 and frames < GRID * GRID


def test_compare_puts_par_beside_its_rivals_on_one_step_clock():
    cp = plan_compare(DEFAULT_MODEL, "heart", ["distant 4x", "zipar w2", "diagonal",
                                               "random-cosine 67"], 2.0, 1.0, 0, 3)
    steps = [s.num_steps for s in cp.schedules]
    assert steps == [67, 2 * GRID + (GRID - 2) * 2, 2 * GRID - 1, 67]
    records = list(compare_stream(cp, overlay=False, frame_interval=3600.0))[-1][0]
    assert all(r.complete for r in records)
    rows = compare_table(records)
    assert [r[1] for r in rows] == ["4 per step after 4 single", "window 2", "row + col = step",
                                    "cosine, S = 67"]
    assert [r[2] for r in rows] == steps
    assert rows[0][7] == "—"  # no ordering makes one token per step: no time speedup claimed


def test_generate_and_the_explorer_take_the_rival_fields():
    zipar = plan(parallel=4, order="zipar", window=5)
    assert zipar.schedule.spec.window == 5 and zipar.schedule.num_steps == 2 * GRID + 14 * 5
    cosine = plan(parallel=4, order="random-cosine", steps=20)
    assert cosine.schedule.num_steps == 20
    with pytest.raises(gr.Error, match="window must be"):
        plan(order="zipar", window=0)
    with pytest.raises(gr.Error, match="window must be 1 to 16"):
        plan(order="zipar", window=17)
    with pytest.raises(gr.Error, match="steps must be a whole number"):
        plan(order="random-cosine", steps=2.5)
    check = gen.generate_check(DEFAULT_MODEL, 4, "zipar", True, 3, 67)
    assert "74 steps" in check.check and check.window["visible"] and not check.steps["visible"]
    controls = und.order_controls("random-cosine")
    assert controls.steps["visible"] and not controls.window["visible"]
    assert not controls.parallel["interactive"] and und.order_controls("raster").init[
        "interactive"]
    explained = und.explore(8, 4, "zipar", True, 9, 67)
    assert explained.figure is None and "window must be 1 to 8" in explained.text
    image, text, steps = schedule_figure(16, 4, "diagonal", True)
    assert steps == 31 and "row + column" in text
    assert "random-cosine-s12" in schedule_animation(16, 1, "random-cosine", True, 50,
                                                    window=3, steps=12)
