"""The worker a run executes in: it takes steps at its own pace, the display sees the latest
state, Stop ends it between two steps, and its errors reach the display thread."""
from __future__ import annotations

import math
import threading
import time

import pytest

from par_demo.ui.session import StepWorker


class Counter:
    """A run of `n` steps, each taken once the test lets it (`allow`)."""

    def __init__(self, n: int):
        self.n, self.done, self.permits = n, 0, threading.Semaphore(0)

    def allow(self, steps: int) -> None:
        for _ in range(steps):
            self.permits.release()

    def ticks(self):
        for _ in range(self.n):
            self.permits.acquire()
            yield self.step

    def step(self) -> None:
        self.done += 1


def worker_for(run: Counter) -> StepWorker:
    return StepWorker(run.ticks(), lambda: run.done, lambda: run.done)


def wait_for(condition) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_the_display_gets_the_latest_state_not_every_step():
    run = Counter(200)
    worker = worker_for(run)
    run.allow(1)
    assert worker.latest(0, 0.0) == (1, False)
    run.allow(50)
    wait_for(lambda: run.done == 51)
    assert worker.latest(1, 0.0) == (51, False)  # the steps it missed are not shown one by one
    run.allow(149)
    assert worker.latest(51, math.inf) == (200, True)  # the last always is
    assert worker.latest(200, 0.0) is None  # nothing new will come
    worker.stop()


def test_stop_ends_the_run_between_two_steps():
    run = Counter(10_000)
    worker = worker_for(run)
    run.allow(10)
    wait_for(lambda: run.done == 10)
    stopper = threading.Thread(target=worker.stop)
    stopper.start()  # Stop arrives while the 11th step is in progress
    time.sleep(0.05)
    run.allow(100)
    stopper.join(30)
    assert not worker.alive and run.done == 11  # the step in progress ends, no other starts


def test_a_failing_step_is_raised_where_the_page_reads():
    def ticks():
        yield lambda: None
        raise MemoryError("CUDA out of memory")

    worker = StepWorker(ticks(), lambda: 0, lambda: 0)
    with pytest.raises(MemoryError, match="out of memory"):
        worker.latest(0, 0.0)
    worker.stop()


def test_a_stop_just_after_a_run_ended_finds_that_run_and_later_finds_none(monkeypatch):
    from par_demo.ui.session import Sessions

    sessions = Sessions()
    running = sessions.start("visitor")
    sessions.end("visitor", running)
    assert sessions.stop("visitor") == []  # nothing left to stop
    assert sessions.just_ended("visitor") is running  # but the Done line was still on its way
    assert sessions.just_ended("another") is None and sessions.just_ended(None) is None
    time.sleep(0.05)
    assert sessions.just_ended("visitor", within_s=0.01) is None
    # an old end is dropped when another run ends: no session keeps its pictures forever
    monkeypatch.setattr("par_demo.ui.session.JUST_ENDED_S", 0.01)
    sessions.end("another", sessions.start("another"))
    assert sessions.just_ended("visitor", within_s=3600) is None
