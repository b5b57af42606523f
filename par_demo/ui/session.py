"""Where a run executes and how it is stopped: the worker thread that takes a run's steps at the
engine's speed, and the runs in progress of each visitor's session (Stop ends the caller's own).

The display never holds the sampler back: the worker appends every step to the run's record as
soon as it is taken; the page asks for the latest state at its display rate (`StepWorker.latest`)
and draws only the frames it shows. Stop and cancel end the run between two steps.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterator

log = logging.getLogger("par_demo.ui")

Tick = Callable[[], None]  # applies one step's results to the run's records
MAX_WAIT_SECONDS = 3600.0  # a display that wants only the last frame asks for "never" (inf)


class StepWorker:
    """Runs `ticks` in a thread: each item is computed outside the lock (the model's step) and
    applied under it, so `latest` never sees a half-applied step."""

    def __init__(self, ticks: Iterator[Tick], snapshot: Callable[[], object],
                 steps_done: Callable[[], int]) -> None:
        self._ticks, self._snapshot, self._steps_done = ticks, snapshot, steps_done
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._finished = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="par-run", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            for apply in self._ticks:
                with self._changed:
                    apply()
                    self._changed.notify_all()
                if self._stop.is_set():
                    break
        except BaseException as err:  # re-raised in the display thread, which reports it
            self._error = err
        finally:
            close = getattr(self._ticks, "close", None)
            if close:
                close()
            with self._changed:
                self._finished = True
                self._changed.notify_all()

    def latest(self, after_steps: int, not_before: float) -> tuple[object, bool] | None:
        """(snapshot, finished) once more than `after_steps` steps are done and the clock has
        reached `not_before`, or at once when the run finishes; None when nothing new will come."""
        with self._changed:
            while True:
                if self._error is not None:
                    raise self._error
                new = self._steps_done() > after_steps
                if self._finished:
                    return (self._snapshot(), True) if new else None
                wait = not_before - time.perf_counter()
                if new and wait <= 0:
                    return self._snapshot(), False
                self._changed.wait(timeout=min(wait, MAX_WAIT_SECONDS) if new else None)

    def stop(self) -> None:
        """End the run after the step in progress and wait for the thread."""
        self._stop.set()
        self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class Running:
    """One run in progress: Stop asks it to end; it says where it ended."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.ended = threading.Event()
        self.last = None  # the Run it showed last


JUST_ENDED_S = 10.0  # a Stop this soon after a run finished was meant for that run


class Sessions:
    """The runs in progress per session. Stop (the button or /stop) ends the caller's runs
    between two frames: Gradio's cancel reaches only runs that the page itself started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, list[Running]] = {}
        self._last_end: dict[str, tuple[float, Running]] = {}  # per session: when, which

    def start(self, session: str | None) -> Running:
        running = Running()
        with self._lock:
            self._runs.setdefault(session or "", []).append(running)
        return running

    def end(self, session: str | None, running: Running) -> None:
        with self._lock:
            mine = self._runs.get(session or "", [])
            if running in mine:
                mine.remove(running)
            if not mine:
                self._runs.pop(session or "", None)
            now = time.monotonic()  # keep only the recent ends: a run holds its pictures
            self._last_end = {k: v for k, v in self._last_end.items()
                              if now - v[0] <= JUST_ENDED_S}
            self._last_end[session or ""] = (now, running)
        running.ended.set()

    def just_ended(self, session: str | None, within_s: float = JUST_ENDED_S) -> Running | None:
        """The session's run that ended in the last `within_s` seconds, if any: a Stop that
        arrives after it finished (its Done line may still be on its way to the page)."""
        with self._lock:
            when, running = self._last_end.get(session or "", (float("-inf"), None))
        return running if session and time.monotonic() - when <= within_s else None

    def stop(self, session: str | None, timeout: float = 30.0) -> list[Running]:
        """Ask the session's runs to end and wait until they have; the runs that ended."""
        with self._lock:
            mine = list(self._runs.get(session or "", [])) if session else []
        for running in mine:
            running.stop.set()
        return [r for r in mine if r.ended.wait(timeout)]


RUNS = Sessions()


def _records(state) -> list:
    return list(state) if isinstance(state, list) else [state]


def _steps(state) -> str:
    return ", ".join(f"{r.steps_done} of {r.num_steps} ({r.label})"
                     for r in _records(state or [])) or "0"


def stoppable(stream, session: str | None):
    """(item, stopped) for each (record or records, picture) of a run's stream. Once the
    caller's Stop arrives, the run is closed between two frames and its last item comes with
    stopped=True. Each run's end is logged: finished, stopped or cancelled."""
    running = RUNS.start(session)
    try:
        for item in stream:
            running.last = item[0]
            if running.stop.is_set() and not all(r.complete for r in _records(item[0])):
                stream.close()
                log.info("run stopped after step %s", _steps(item[0]))
                yield item, True
                return
            yield item, False
        log.info("run finished after step %s", _steps(running.last))
    except GeneratorExit:  # cancelled by Gradio: the page's Stop, a client's job.cancel()
        log.info("run cancelled after step %s", _steps(running.last))
        raise
    finally:
        stream.close()
        RUNS.end(session, running)
