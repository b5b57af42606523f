"""What every tab with one run at a time shares (Generate, Edit): Stop and where it left the
run, a refused request clearing the last run's pictures, and the replay slider's pictures."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from par_demo.ui import views, widgets as w
from par_demo.ui.errors import fail, friendly
from par_demo.ui.inputs import number
from par_demo.ui.runs import RunRecord, RunViews, replay_views
from par_demo.ui.session import RUNS


@dataclass
class Stopped:
    status: Any = w.skip()
    details: Any = w.skip()


def stop_report(record: RunRecord) -> Stopped:
    return Stopped(views.stopped_line(record.schedule, record.steps_done, record.elapsed),
                   record.summary() | {"stopped": True})


def stop_run(request: gr.Request = None) -> Stopped:
    """Stop (the button or /stop): ends the caller's runs and reports where the run ended. It
    takes no inputs: the caller's runs are found by session, so `/stop` takes `data: []`."""
    session = w.session_of(request)
    ended = [r.last for r in RUNS.stop(session) if isinstance(r.last, RunRecord)]
    if not ended:
        finished = RUNS.just_ended(session)
        if not (finished and isinstance(finished.last, RunRecord) and finished.last.complete):
            return Stopped("No run in progress: there was nothing to stop.")
        ended = [finished.last]
    if ended[-1].complete:  # it finished before Stop reached it: its Done line stands
        return Stopped()
    return stop_report(ended[-1])


@dataclass
class Refused:
    """A refused request leaves no pictures of an earlier run standing as if they were its own."""
    pictures: RunViews | None = None
    status: Any = ("✗ **Not run**: the request was refused (the message says why). The "
                   "previous run's pictures are cleared.")
    details: Any = None
    run: Any = None
    step: Any = field(default_factory=lambda: gr.update(interactive=False, visible=False))


def refused() -> Refused:
    return Refused()


@dataclass
class Replayed:
    pictures: RunViews


@friendly
def replay(record: RunRecord | None, step) -> Replayed:
    """The run's pictures after `step` (1-based), as they streamed."""
    if not isinstance(record, RunRecord) or not record.tokens:
        fail("generate an image first; the slider replays its steps", title="Nothing to replay")
    step = number(step, "step", 1, max(record.steps_done, 2), integer=True)
    return Replayed(replay_views(record, min(step, record.steps_done) - 1))
