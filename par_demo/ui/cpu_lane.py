"""Released-model runs on a CPU, one at a time with all cores, in arrival order.

A released model's step reads gigabytes of weights: two at once would each take twice as long
and hold two KV caches, so they queue here and a waiting run is told its place. Small-model runs
never enter the lane: they keep running beside a large one (Gradio's own queue limits them).
"""
from __future__ import annotations

import itertools
import os
import threading
from contextlib import contextmanager
from typing import Iterator

import torch


class CpuLane:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._tickets = itertools.count()
        self._waiting: list[int] = []  # tickets in arrival order; the first one runs

    def join(self) -> int:
        with self._changed:
            ticket = next(self._tickets)
            self._waiting.append(ticket)
            return ticket

    def position(self, ticket: int) -> int:
        """Runs ahead of `ticket` (0: its turn)."""
        with self._changed:
            return self._waiting.index(ticket)

    def wait(self, ticket: int, timeout: float) -> int:
        """Waits up to `timeout` seconds for the position to change; returns it."""
        with self._changed:
            before = self._waiting.index(ticket)
            if before:
                self._changed.wait_for(lambda: self._waiting.index(ticket) != before, timeout)
            return self._waiting.index(ticket)

    def leave(self, ticket: int) -> None:
        with self._changed:
            self._waiting.remove(ticket)
            self._changed.notify_all()

    @contextmanager
    def all_cores(self) -> Iterator[int]:
        """Torch's threads raised to every core for the run that holds the lane."""
        before = torch.get_num_threads()
        torch.set_num_threads(int(os.environ.get("PAR_TORCH_THREADS", "0")) or os.cpu_count() or 1)
        try:
            yield torch.get_num_threads()
        finally:
            torch.set_num_threads(before)


CPU_LANE = CpuLane()
