"""A model's step loop in a process of its own, so that nothing else in the app shares its
interpreter: in the app's process the page's drawing took the interpreter lock between the small
model's torch calls and made each step about 1.4x slower than on the command line.

    steps = StepProcess(transformer)
    for event in steps.sample_steps(schedule, [class_id], config):  # as sampler.sample_steps
        ...

The child gets a copy of the weights (safetensors bytes) once, then runs every run it is given,
one step of each in turn, and sends each StepEvent as soon as it is taken; it runs ahead of the
reader, so a slow display never holds a step back. Closing a run's iterator ends that run in the
child between two steps. The child exits when the parent closes its pipe or dies.
"""
from __future__ import annotations

import itertools
import os
import queue
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Iterator

import torch
from safetensors.torch import load as load_tensors, save as save_tensors

from par_demo.models.transformer import Transformer
from par_demo.sampler import StepEvent, sample_steps

ENDED = "the step process ended unexpectedly; the next run starts a new one"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


class StepProcess:
    """A child process that takes the steps of one model's runs (any number, interleaved)."""

    def __init__(self, model: Transformer, threads: int | None = None) -> None:
        to_child, self._child_in = os.pipe()
        self._child_out, from_child = os.pipe()
        # the package's own folder first: the app may run from any working directory
        path = os.pathsep.join(filter(None, (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH"))))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "par_demo.step_process", str(to_child), str(from_child)],
            pass_fds=(to_child, from_child),
            env=dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1"))
        os.close(to_child)
        os.close(from_child)
        self._send_conn = Connection(self._child_in, readable=False)
        self._recv_conn = Connection(self._child_out, writable=False)
        state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
        self._send_lock = threading.Lock()
        self._runs: dict[int, queue.SimpleQueue] = {}
        self._ids = itertools.count()
        self._ended = False
        try:
            self._send_conn.send((model.args, save_tensors(state),
                                  threads or torch.get_num_threads()))
        except OSError:  # it did not start: every run says so (`alive` is False)
            self._ended = True
            return
        threading.Thread(target=self._read, name="par-steps-reader", daemon=True).start()

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return not self._ended and self._process.poll() is None

    def _send(self, message) -> None:
        with self._send_lock:
            self._send_conn.send(message)

    def _read(self) -> None:
        """Hands each message to its run's queue; a run already closed drops its messages."""
        try:
            while True:
                run_id, kind, payload = self._recv_conn.recv()
                run = self._runs.get(run_id)
                if run is not None:
                    run.put((kind, payload))
        except (EOFError, OSError):
            self._ended = True
            for run in list(self._runs.values()):
                run.put(("error", ("RuntimeError", ENDED)))

    def sample_steps(self, schedule, class_ids, config, **options) -> Iterator[StepEvent]:
        """sampler.sample_steps for this process's model (the same arguments after `model`)."""
        if not self.alive:
            raise RuntimeError(ENDED)
        run_id, events = next(self._ids), queue.SimpleQueue()
        self._runs[run_id] = events
        finished = False
        try:
            self._send(("start", run_id, dict(schedule=schedule, class_ids=list(class_ids),
                                               config=config, **options)))
            while True:
                kind, payload = events.get()
                if kind == "step":
                    yield payload
                    continue
                finished = True
                if kind == "done":
                    return
                name, message = payload
                raise (ValueError if name == "ValueError" else RuntimeError)(message)
        except OSError:
            raise RuntimeError(ENDED) from None
        finally:
            self._runs.pop(run_id, None)
            if not finished and self.alive:
                try:
                    self._send(("close", run_id, None))
                except OSError:
                    pass  # it ended meanwhile: nothing left to stop

    def close(self) -> None:
        """End the child (it exits on the closed pipe) and wait for it."""
        self._send_conn.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def serve(commands: Connection, events: Connection) -> None:
    """The child: build the model, then take one step of each live run in turn, reading new
    commands between rounds (and waiting for one when no run is live)."""
    args, weights, threads = commands.recv()
    torch.set_num_threads(threads)
    model = Transformer(args)
    model.load_state_dict(load_tensors(weights))
    model.eval()
    runs: dict[int, Iterator[StepEvent]] = {}
    while True:
        while not runs or commands.poll():
            try:
                command, run_id, kwargs = commands.recv()
            except EOFError:
                return
            if command == "start":
                runs[run_id] = sample_steps(model, **kwargs)
            elif run_id in runs:
                runs.pop(run_id).close()
        for run_id, run in list(runs.items()):
            try:
                events.send((run_id, "step", next(run)))
            except StopIteration:
                del runs[run_id]
                events.send((run_id, "done", None))
            except (BrokenPipeError, EOFError):
                return
            except Exception as err:  # the parent raises it in the run that asked
                del runs[run_id]
                events.send((run_id, "error", (type(err).__name__, str(err))))


def main() -> None:
    commands = Connection(int(sys.argv[1]), writable=False)
    events = Connection(int(sys.argv[2]), readable=False)
    try:
        serve(commands, events)
    except (BrokenPipeError, EOFError, KeyboardInterrupt):
        pass


if __name__ == "__main__":
    main()
