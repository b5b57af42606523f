"""The step loop in its own process (step_process.py): the same events as in this process, runs
interleaved without mixing, a closed run ends in the child, errors named, a dead child replaced."""
import os
import signal

import numpy as np
import pytest

from par_demo.checkpoints import load_model
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.presets import DEFAULT_MODEL
from par_demo.sampler import Prefix, sample_steps
from par_demo.sampling import SamplingConfig
from par_demo.step_process import ENDED, StepProcess
from par_demo.ui import machine
from par_demo.ui.machine import ModelCache

DISTANT_4X = build_schedule(ScheduleSpec(16, "distant", 4, True))
RASTER_1X = build_schedule(ScheduleSpec(16, "raster", 1))
CONFIG = SamplingConfig(seed=3)


@pytest.fixture(scope="module")
def loaded():
    return load_model(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def steps(loaded):
    process = StepProcess(loaded.transformer, threads=1)
    yield process
    process.close()


def tokens_of(events):
    return np.stack([e.tokens for e in events])


def test_same_events_as_in_this_process(loaded, steps):
    here = list(sample_steps(loaded.transformer, DISTANT_4X, [7], CONFIG))
    there = list(steps.sample_steps(DISTANT_4X, [7], CONFIG))
    assert [e.step for e in there] == list(range(DISTANT_4X.num_steps))
    np.testing.assert_array_equal(tokens_of(there), tokens_of(here))
    np.testing.assert_array_equal(there[-1].step_map, here[-1].step_map)
    np.testing.assert_allclose(there[-1].entropy, here[-1].entropy, rtol=1e-4, atol=1e-6)
    assert all(e.step_seconds > 0 for e in there)


def test_a_prefix_continues_as_here(loaded, steps):
    first = list(sample_steps(loaded.transformer, RASTER_1X, [2], CONFIG))
    prefix = Prefix(first[99].tokens[0], steps_done=100)
    branch = SamplingConfig(seed=11)
    here = list(sample_steps(loaded.transformer, RASTER_1X, [2], branch, prefix=prefix))
    there = list(steps.sample_steps(RASTER_1X, [2], branch, prefix=prefix))
    assert there[0].step == 100
    np.testing.assert_array_equal(tokens_of(there), tokens_of(here))


def test_interleaved_runs_each_match_their_solo_run(steps):
    solo = {c: tokens_of(steps.sample_steps(DISTANT_4X, [c], CONFIG)) for c in (1, 9)}
    runs = {c: steps.sample_steps(DISTANT_4X, [c], CONFIG) for c in (1, 9)}
    together = {c: [] for c in runs}
    for _ in range(DISTANT_4X.num_steps):
        for c, run in runs.items():
            together[c].append(next(run))
    for c in runs:
        np.testing.assert_array_equal(tokens_of(together[c]), solo[c])
        with pytest.raises(StopIteration):
            next(runs[c])


def test_a_closed_run_ends_and_the_process_serves_the_next(steps):
    run = steps.sample_steps(RASTER_1X, [4], CONFIG)
    assert next(run).step == 0
    run.close()
    events = list(steps.sample_steps(DISTANT_4X, [4], CONFIG))
    assert len(events) == DISTANT_4X.num_steps and steps.alive


def test_a_refused_run_names_its_field(steps):
    with pytest.raises(ValueError, match="prefix tokens must be"):
        list(steps.sample_steps(RASTER_1X, [4], CONFIG, prefix=Prefix(np.zeros(5, np.int64), 1)))
    assert len(list(steps.sample_steps(DISTANT_4X, [4], CONFIG))) == DISTANT_4X.num_steps


def test_a_dead_process_is_named_and_replaced(loaded):
    cache = ModelCache()
    cached = cache.get(DEFAULT_MODEL, "cpu")
    sample = cache.sampler(cached)
    run = sample(RASTER_1X, [4], CONFIG)
    next(run)
    [first] = cache.step_processes(DEFAULT_MODEL)
    os.kill(first.pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match=ENDED):
        list(run)
    np.testing.assert_array_equal(
        tokens_of(sample(DISTANT_4X, [7], CONFIG)),
        tokens_of(sample_steps(loaded.transformer, DISTANT_4X, [7], CONFIG)))
    [second] = cache.step_processes(DEFAULT_MODEL)
    assert second.pid != first.pid
    second.close()


def test_overlapping_runs_take_their_own_processes_up_to_the_cores(loaded, monkeypatch):
    monkeypatch.setattr(machine, "concurrent_cpu_runs", lambda: 2)
    cache = ModelCache()
    sample = cache.sampler(cache.get(DEFAULT_MODEL, "cpu"))
    runs = [sample(DISTANT_4X, [c], CONFIG) for c in (1, 9, 12)]
    firsts = [next(run) for run in runs]  # three runs at once: two processes, one shared
    processes = cache.step_processes(DEFAULT_MODEL)
    assert len(processes) == 2
    for c, first, run in zip((1, 9, 12), firsts, runs):
        alone = tokens_of(sample_steps(loaded.transformer, DISTANT_4X, [c], CONFIG))
        np.testing.assert_array_equal(tokens_of([first, *run]), alone)
    next(sample(DISTANT_4X, [2], CONFIG))  # all idle again: no third process
    assert len(cache.step_processes(DEFAULT_MODEL)) == 2
    for process in processes:
        process.close()


def test_the_process_starts_from_any_working_directory(loaded, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as `python /path/to/app.py` from elsewhere
    monkeypatch.delenv("PYTHONPATH", raising=False)
    process = StepProcess(loaded.transformer, threads=1)
    try:
        assert len(list(process.sample_steps(DISTANT_4X, [3], CONFIG))) == DISTANT_4X.num_steps
    finally:
        process.close()


def test_a_run_steps_here_when_the_process_cannot_start(loaded, monkeypatch):
    monkeypatch.setattr("par_demo.step_process.sys.executable", "/bin/false")
    cache = ModelCache()
    sample = cache.sampler(cache.get(DEFAULT_MODEL, "cpu"))
    np.testing.assert_array_equal(
        tokens_of(sample(DISTANT_4X, [7], CONFIG)),
        tokens_of(sample_steps(loaded.transformer, DISTANT_4X, [7], CONFIG)))
