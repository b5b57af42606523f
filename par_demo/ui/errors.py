"""Turning every failure a visitor can cause into a clear message (gr.Error), never a traceback."""
from __future__ import annotations

import functools
import inspect
import logging
import math
from typing import Callable, NoReturn

import gradio as gr

from par_demo.checkpoints import CheckpointError
from par_demo.presets import UnsupportedSchedule
from par_demo.classes import ClassError
from par_demo.orders import ScheduleError
from par_demo.pictures import EditError

log = logging.getLogger("par_demo.ui")

# the project's own refusals: shown to the visitor as they are; anything else is a bug
REFUSALS = (ClassError, ScheduleError, UnsupportedSchedule, CheckpointError, EditError)


MAX_SHOWN = 60  # characters of a visitor's value quoted back in a message


def shown(value) -> str:
    """A visitor's value as a message quotes it: cut short, so a huge input is not echoed."""
    if isinstance(value, int) and value.bit_length() > 128:  # repr of a huge int is refused
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[:MAX_SHOWN]}… ({len(text)} characters)"


class InputError(gr.Error):
    """An input the app cannot run, with the reason."""

    def __init__(self, message: str, title: str = "Cannot run this") -> None:
        super().__init__(message, title=title, print_exception=False)


def fail(message: str, title: str = "Cannot run this") -> NoReturn:
    raise InputError(message, title)


def _convert(err: Exception) -> gr.Error:
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, REFUSALS):
        return InputError(str(err))
    log.error("unexpected error in a callback", exc_info=err)
    return gr.Error("The server failed on this request (the failure is logged). Try again; if "
                    "it persists, please report it.", title="Server error",
                    print_exception=False)


def friendly(fn: Callable) -> Callable:
    """Wrap a callback (plain or generator) so that every exception reaches the page as gr.Error."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - the point is to catch everything
                raise _convert(err) from err
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001
            raise _convert(err) from err
    return wrapper
