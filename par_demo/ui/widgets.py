"""What the tabs share: wiring a callback's output dataclass to components by name, the widgets
every run tab has (model and class pickers, run controls, sampling settings, the replay slider,
the Record section) and the callbacks behind them."""
from __future__ import annotations

import functools
import inspect
import json
import random
from contextlib import closing
from dataclasses import dataclass, field, fields, is_dataclass
from types import SimpleNamespace
from typing import Any, get_type_hints

import gradio as gr
import numpy as np

from par_demo.animation import FRAME_MS_RANGE
from par_demo.classes import ClassError
from par_demo.presets import DEFAULT_MODEL, PRESETS, get_preset
from par_demo.ui.files import FILES
from par_demo.ui.inputs import (DEFAULT_STEPS, DEFAULT_WINDOW, GUIDANCE_RANGE, SEED_RANGE,
                                STEPS_RANGE, TEMPERATURE_RANGE, WINDOW_RANGE)
from par_demo.ui.machine import availability
from par_demo.ui.runs import RunRecord

# a session's last run (its replay and exports) is freed after this long untouched, and when its
# page closes; at most app.py's session_capacity() sessions are kept in all (visitors.py)
RUN_KEEP_SECONDS = 3600
DEFAULT_CLASS = "heart"  # the embedded model's; other models start at class 0
UI = dict(queue=False, api_visibility="private")  # page-only events: instant, not in the API
RUN = dict(concurrency_id="model", preprocess=False)  # the events that take the model
# the page's named endpoints, documented for gradio_client; the MCP tools are another app's
# (tools_app.py), so these are none
SCRIPTED = dict(api_visibility="public")


def skip() -> Any:
    """A field left as it is on the page."""
    return field(default_factory=gr.skip)


def session_of(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


# ---------------------------------------------------------------- outputs by name

def _slots(view) -> list[tuple[str, str | None]]:
    """(field, sub-field) per output: a field typed as a group of outputs (a dataclass with
    `output_group` set, such as a run's pictures) stands for one output per field of it, so
    those components are named once, in that dataclass."""
    hints = get_type_hints(view)
    slots = []
    for f in fields(view):
        kind = hints[f.name]
        inner = [a for a in getattr(kind, "__args__", (kind,)) if getattr(a, "output_group", 0)]
        slots += [(f.name, g.name) for g in fields(inner[0])] if inner else [(f.name, None)]
    return slots


def named(fn, parts: SimpleNamespace, view) -> tuple:
    """(fn, outputs) for an event: `fn` returns or yields a `view` dataclass, whose fields name
    the components in `parts` it updates; Gradio gets the fields' values in that order."""
    slots = _slots(view)
    outputs = [getattr(parts, sub or name) for name, sub in slots]

    def values(out):
        got = []
        for name, sub in slots:
            value = getattr(out, name)
            if sub is not None and is_dataclass(value):
                value = getattr(value, sub)  # else None (cleared) or a skip, for every part
            got.append(_served(value))
        return got[0] if len(got) == 1 else tuple(got)  # Gradio takes one output's value bare

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            with closing(fn(*args, **kwargs)) as outs:  # a cancel reaches the run at once
                for out in outs:
                    yield values(out)
        return stream, outputs

    @functools.wraps(fn)
    def call(*args, **kwargs):
        return values(fn(*args, **kwargs))
    return call, outputs


def _served(value):
    """Pictures go to the page as PNG files (files.FILES.picture); other values as they are."""
    return FILES.picture(value) if isinstance(value, np.ndarray) else value


def on(trigger, fn, inputs, parts: SimpleNamespace, view, **kwargs):
    """`trigger(fn, inputs, outputs)` with the outputs named by `view`'s fields."""
    fn, outputs = named(fn, parts, view)
    return trigger(fn=fn, inputs=inputs, outputs=outputs, **kwargs)


# ---------------------------------------------------------------- models and classes

def class_choices(model: str) -> list[str]:
    names = get_preset(model).class_names()
    return [names.label(i) for i in range(len(names))]


def class_label(model: str, query) -> str:
    """The dropdown label of a class given by name or index; class 0 if it does not resolve."""
    names = get_preset(model).class_names()
    try:
        return names.label(names.resolve(query))
    except ClassError:
        return names.label(0)


def default_class(model: str) -> str:
    return class_label(model, DEFAULT_CLASS)


def model_note(model: str) -> str:
    state = availability()[get_preset(model).name]
    p = state.preset
    runs = "runs any ordering" if p.runs is None else f"runs only {p.runs.label}"
    text = (f"{p.description} · {p.args.grid}×{p.args.grid} tokens → {p.image_size} px · "
            f"{len(p.class_names())} classes · {runs}")
    if state.reason:
        text += f"\n\n✗ **Unavailable here:** {state.reason}"
    elif state.cost_note:
        text += f"\n\n⏱ **No GPU here:** it {state.cost_note}"
    return text


def class_update(model: str, current_class):
    """The new model's classes, keeping the current one when the model has a class of that name."""
    names = get_preset(model).class_names()
    text = str(current_class or "")
    name = text.split(": ", 1)[1] if ": " in text else text  # "4: heart" -> "heart"
    try:
        keep = names.label(names.resolve(name))
    except ClassError:
        keep = default_class(model)
    return gr.update(choices=class_choices(model), value=keep)


def random_seed() -> int:
    return random.SystemRandom().randint(*SEED_RANGE)


def next_seed(new_seed: bool, seed):
    """The seed of the run a click starts: a new one when the switch is on."""
    return random_seed() if new_seed is True else seed


def model_dropdown(elem_id: str) -> gr.Dropdown:
    choices = [(availability()[name].label, name) for name in PRESETS]
    return gr.Dropdown(choices, value=DEFAULT_MODEL, label="Model", elem_id=elem_id,
                       # one line on a phone: each choice says what it costs here
                       info="Released models need their files")


def rival_sliders(prefix: str) -> tuple[gr.Slider, gr.Slider]:
    """ZipAR's window and random-cosine's steps, hidden until their ordering is picked."""
    window = gr.Slider(*WINDOW_RANGE, value=DEFAULT_WINDOW, step=1, visible=False,
                       label="ZipAR window", elem_id=f"{prefix}-window",
                       info="a row starts once the row above has this many tokens")
    steps = gr.Slider(*STEPS_RANGE, value=DEFAULT_STEPS, step=1, visible=False,
                      label="Steps (random-cosine)", elem_id=f"{prefix}-steps")
    return window, steps


def class_dropdown(elem_id: str, **kwargs) -> gr.Dropdown:
    return gr.Dropdown(class_choices(DEFAULT_MODEL), value=default_class(DEFAULT_MODEL),
                       label="Class", filterable=True, allow_custom_value=True,
                       elem_id=elem_id, **kwargs)


# ---------------------------------------------------------------- pictures and controls

def image(label: str, min_width: int = 200, **kwargs) -> gr.Image:
    """A crisp output picture with its caption above it (Gradio's floating label would cover
    the picture's corner); a row of them wraps where each would be under `min_width` px."""
    with gr.Column(min_width=min_width, elem_classes=["par-picture"]):
        gr.Markdown(f"**{label}**", elem_classes=["par-caption"])
        return gr.Image(label=label, show_label=False, type="numpy", format="png",
                        interactive=False, elem_classes=["pixelated"],
                        buttons=["download", "fullscreen"], **kwargs)


def bring_into_view(trigger, elem_id: str) -> None:
    """On a click, scroll the status line (the outputs under it) into view if it is out of
    sight: on a phone the controls stack above the outputs."""
    trigger(None, None, None, js=f"""() => {{
        const el = document.getElementById({json.dumps(elem_id)});
        if (!el) return;
        const box = el.getBoundingClientRect();
        if (box.top < 0 || box.top > window.innerHeight * 0.6)
            el.scrollIntoView({{behavior: "smooth", block: "start"}});
    }}""", **UI)


def run_controls(prefix: str, parts: SimpleNamespace, action: str, check: str,
                 new_seed: bool = False) -> gr.Button:
    """What can run and why not, the run button (with a "new seed each run" switch where
    asked), the sampling settings; returns Stop."""
    parts.check = gr.Markdown(check, elem_classes=["par-reason"], elem_id=f"{prefix}-check")
    with gr.Row():  # above the settings: in view at the first visit, beside the outputs
        parts.run_button = gr.Button(action, variant="primary", elem_id=f"{prefix}-run")
        stop = gr.Button("Stop", variant="stop", elem_id=f"{prefix}-stop")
    if new_seed:
        parts.new_seed = gr.Checkbox(value=True, label="New seed each run",
                                     info="Off: the seed under Sampling, to repeat a run",
                                     elem_id=f"{prefix}-new-seed")
    sampling(prefix, parts)
    return stop


def sampling(prefix: str, parts: SimpleNamespace) -> None:
    preset = get_preset(DEFAULT_MODEL)
    with gr.Accordion("Sampling", open=False):  # closed: the run button stays in view
        parts.cfg = gr.Slider(*GUIDANCE_RANGE, value=preset.sampling.cfg_scale, step=0.05,
                              label="Guidance scale", info="1 = no classifier-free guidance")
        parts.temperature = gr.Slider(*TEMPERATURE_RANGE, value=preset.sampling.temperature,
                                      step=0.05, label="Temperature")
        parts.top_k = gr.Number(value=preset.sampling.top_k, precision=0, minimum=0,
                                label="Top-k", info="0 keeps every token")
        with gr.Row(equal_height=True):
            parts.seed = gr.Number(value=0, precision=0, minimum=SEED_RANGE[0],
                                   maximum=SEED_RANGE[1], label="Seed", scale=4,
                                   elem_id=f"{prefix}-seed")
            dice = gr.Button("⚄ Random", scale=1, min_width=90, elem_id=f"{prefix}-dice")
    dice.click(random_seed, None, parts.seed, queue=False, api_visibility="private")


# ---------------------------------------------------------------- replay

REPLAY_LABEL = "Replay: step (drag to see every recorded step)"


def replay_slider(elem_id: str) -> gr.Slider:
    """Scrubs a finished (or stopped) run's recorded steps; waits while a run streams."""
    return gr.Slider(1, 2, value=1, step=1, interactive=False, visible=False, elem_id=elem_id,
                     label=REPLAY_LABEL)


@dataclass
class ReplayRange:
    step: Any


def replay_off() -> ReplayRange:
    """While a run streams there is nothing to replay yet: the slider is hidden."""
    return ReplayRange(gr.update(interactive=False, visible=False))


def replay_range(run: RunRecord | list[RunRecord] | None) -> ReplayRange:
    """After a run: the slider spans its recorded steps (a comparison's: its step clock) and
    stands on the last."""
    records = [run] if isinstance(run, RunRecord) else list(run or [])
    if not records or not all(r.tokens for r in records):
        return ReplayRange(gr.update(interactive=False, visible=False))
    last = max(r.steps_done for r in records)
    return ReplayRange(gr.update(minimum=1, maximum=max(last, 2), value=last, interactive=True,
                                 visible=True, label=f"{REPLAY_LABEL}: 1 to {last}"))


# ---------------------------------------------------------------- finished panels' overlay

def final_overlay_switch(elem_id: str) -> gr.Checkbox:
    """One click from a comparison's clean finished pictures to their Figure 3 order."""
    return gr.Checkbox(value=False, label="Show the Figure 3 order on the finished pictures",
                       elem_id=elem_id)


@dataclass
class FinalOverlay:
    final_overlay: Any


def final_overlay_off() -> FinalOverlay:
    """A new run ends with its pictures clean: the switch starts off."""
    return FinalOverlay(False)


# ---------------------------------------------------------------- the Record section

@dataclass
class ExportOut:
    gif: Any
    mp4: Any
    animation: Any
    note: Any

    @classmethod
    def of(cls, done, note: str) -> ExportOut:
        """The download buttons and the preview for finished files (an export.Exported)."""
        return cls(str(done.gif), str(done.mp4), str(done.gif), note)


def reset_downloads() -> ExportOut:
    """A new run makes the previous files stale: empty and disable the download buttons."""
    off = gr.update(value=None, interactive=False)
    return ExportOut(off, off, None, "")


@dataclass
class Downloads:
    gif: Any
    mp4: Any


def enable_downloads() -> Downloads:
    return Downloads(gr.update(interactive=True), gr.update(interactive=True))


def frames_text(done, per: str) -> str:
    if done.frames == done.steps:
        return f"{done.frames} frames (one per {per})"
    return f"{done.frames} frames spread over {done.steps} steps (the first and last kept)"


def record_row(prefix: str, api_name: str, export_fn, source) -> SimpleNamespace:
    """The Record accordion: overlay switch, frame duration, the export button and its files."""
    r = SimpleNamespace()
    with gr.Accordion("Record: GIF and MP4", open=True):
        with gr.Row(equal_height=True):
            r.with_overlay = gr.Checkbox(value=True, label="Figure 3 overlay on the frames")
            r.frame_ms = gr.Slider(*FRAME_MS_RANGE, value=120, step=10,
                                   label="Frame duration (ms)")
            r.button = gr.Button("Make GIF & MP4", variant="secondary",
                                 elem_id=f"{prefix}-export")
        with gr.Row():
            r.gif = gr.DownloadButton("⬇ Download GIF", interactive=False,
                                      elem_id=f"{prefix}-gif")
            r.mp4 = gr.DownloadButton("⬇ Download MP4", interactive=False,
                                      elem_id=f"{prefix}-mp4")
        r.note = gr.Markdown(label="Export note")
        r.animation = gr.Image(label="Animation", type="filepath", interactive=False,
                               elem_classes=["pixelated"])
    export = on(r.button.click, export_fn, [source, r.with_overlay, r.frame_ms], r,
                ExportOut, api_name=api_name, **SCRIPTED, **RUN)
    on(export.success, enable_downloads, None, r, Downloads, **UI)
    return r
