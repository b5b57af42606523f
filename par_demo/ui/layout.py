"""The page: Generate, Compare and Understand tabs, wired to the callbacks, with named API
endpoints (/generate, /stop, /export, /compare, /export_compare, /schedule, /schedule_step,
/schedule_animation). Events that take a visitor's values skip Gradio's preprocessing
(preprocess=False) so that our own checks answer, naming the field at fault."""
from __future__ import annotations

import functools
import inspect
import json
from contextlib import closing
from dataclasses import fields
from types import SimpleNamespace

import gradio as gr
import numpy as np

from par_demo.animation import FRAME_MS_RANGE
from par_demo.orders import ORDERS
from par_demo.presets import DEFAULT_MODEL, PRESETS, get_preset
from par_demo.ui import callbacks as cb, views
from par_demo.ui.inputs import (GENERATE_ORDERS, GRID_RANGE, GUIDANCE_RANGE, PARALLEL_CHOICES,
                                SEED_RANGE, TEMPERATURE_RANGE)
from par_demo.ui.machine import availability
from par_demo.ui.mcp_tools import register_mcp_tools
from par_demo.ui.runs import COMPARE_HEADERS, COMPARE_ORDERINGS, DEFAULT_COMPARE

TITLE = "PAR: Parallelized Autoregressive Visual Generation"

THEME = gr.themes.Soft(
    primary_hue="indigo", secondary_hue="amber", neutral_hue="slate",
    # system fonts: the page fetches nothing from the internet
    font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)

CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; }
.par-caption { font-size: 0.95em; }
#par-header h1 { margin-bottom: 0.1em; }
#par-header p { margin-top: 0; color: var(--body-text-color-subdued); }
.par-status { min-height: 2.6em; padding: 6px 10px; border-radius: 8px;
              background: var(--background-fill-secondary); }
.par-reason { font-size: 0.92em; }
footer { visibility: visible; }
"""

HEADER = f"""
# {TITLE}
Wang et al., CVPR 2025 · [arXiv 2412.15119](https://arxiv.org/abs/2412.15119) ·
[project page](https://epiphqny.github.io/PAR-project).
Autoregressive models make an image one token at a time. PAR makes **several far-apart tokens
per step** (after a few sequential *initial tokens*), because distant tokens depend on each other
only weakly while neighbours depend strongly. Watch it happen, compare orderings, record them.
"""

ENTROPY_TEXT = """
**Why uncertainty matters.** Tokens generated in the same step are sampled independently. Where
the model is sure (dark cells) that is harmless; where it is unsure (bright cells) two tokens
sampled together can disagree, and if they are neighbours the seam shows. This is why PAR
samples *distant*, weakly dependent tokens together and keeps the first tokens sequential: the
paper's Figures 9 and 11 explain it. The map shows, for each token, the entropy of the
distribution it was drawn from, at the step it was generated.
"""

API_EXAMPLE_URL = "http://127.0.0.1:7860/"  # replaced on the page by the address it is served at
API_TEXT = f"""
Every action is a named endpoint. From Python:

```python
from gradio_client import Client
client = Client("{API_EXAMPLE_URL}")
# model, class, parallelism, ordering, initial tokens, guidance, temperature, top-k, seed
image, overlay, tokens, entropy, status, details = client.predict(
    "PAR-emoji (embedded)", "heart", 4, "distant", True, 2.0, 1.0, 0, 0, api_name="/generate")
# Figure 3 overlay on the frames, frame duration (ms): files of the session's last run
gif, mp4, preview, note = client.predict(True, 80, api_name="/export")
# model, class, 2 to 4 orderings, overlay, guidance, temperature, top-k, seed
frame, table, status = client.predict("PAR-emoji (embedded)", "heart",
    ["raster 1x", "distant 4x"], True, 2.0, 1.0, 0, 0, api_name="/compare")
gif, mp4, preview, note = client.predict(False, 120, api_name="/export_compare")
```
`client.submit(...)` streams the steps of `/generate` and `/compare`;
`client.predict(api_name="/stop")` ends your own runs (or `job.cancel()`). Other endpoints:
`/schedule`, `/schedule_step`, `/schedule_animation`. Inputs are read strictly: numbers as
numbers in the range of the page's controls, `True` / `False` for switches.
"""


def named(fn, parts: SimpleNamespace, view) -> tuple:
    """(fn, outputs) for an event: `fn` returns or yields a `view` dataclass, whose fields name
    the components in `parts` it updates; Gradio gets the fields' values in that order."""
    outputs = [getattr(parts, f.name) for f in fields(view)]

    def values(out):
        got = tuple(_served(getattr(out, f.name)) for f in fields(view))
        return got[0] if len(got) == 1 else got  # Gradio takes one output's value bare

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
    """Pictures go to the page as PNG files (see views.png_file); other values as they are."""
    return views.png_file(value) if isinstance(value, np.ndarray) else value


def on(trigger, fn, inputs, parts: SimpleNamespace, view, **kwargs):
    """`trigger(fn, inputs, outputs)` with the outputs named by `view`'s fields."""
    fn, outputs = named(fn, parts, view)
    return trigger(fn=fn, inputs=inputs, outputs=outputs, **kwargs)


UI = dict(queue=False, api_visibility="private")  # page-only events: instant, not in the API
RUN = dict(concurrency_id="model", preprocess=False)  # the events that take the model
# the page's named endpoints: callable by gradio_client, but no MCP tools (mcp_tools.py has those)
SCRIPTED = dict(api_visibility="undocumented")


def _image(label: str, **kwargs) -> gr.Image:
    """A crisp output picture with its caption above it (Gradio's floating label would cover
    the picture's corner)."""
    with gr.Column(min_width=200):
        gr.Markdown(f"**{label}**", elem_classes=["par-caption"])
        return gr.Image(label=label, show_label=False, type="numpy", format="png",
                        interactive=False, elem_classes=["pixelated"],
                        buttons=["download", "fullscreen"], **kwargs)


def _replay_slider(elem_id: str) -> gr.Slider:
    """Scrubs a finished (or stopped) run's recorded steps; waits while a run streams."""
    return gr.Slider(1, 2, value=1, step=1, interactive=False, elem_id=elem_id,
                     label=f"{cb.REPLAY_LABEL}: after a run")


def _bring_into_view(trigger, elem_id: str) -> None:
    """On a click, scroll the status line (the outputs under it) into view if it is out of
    sight: on a phone the controls stack above the outputs."""
    trigger(None, None, None, js=f"""() => {{
        const el = document.getElementById({json.dumps(elem_id)});
        if (!el) return;
        const box = el.getBoundingClientRect();
        if (box.top < 0 || box.top > window.innerHeight * 0.6)
            el.scrollIntoView({{behavior: "smooth", block: "start"}});
    }}""", **UI)


def _model_dropdown(elem_id: str) -> gr.Dropdown:
    choices = [(availability()[name].label, name) for name in PRESETS]
    return gr.Dropdown(choices, value=DEFAULT_MODEL, label="Model", elem_id=elem_id,
                       info="Released checkpoints need a GPU and their files")


def _class_dropdown(elem_id: str, **kwargs) -> gr.Dropdown:
    return gr.Dropdown(cb.class_choices(DEFAULT_MODEL), value=cb.default_class(DEFAULT_MODEL),
                       label="Class", filterable=True, allow_custom_value=True,
                       elem_id=elem_id, **kwargs)


def _run_controls(prefix: str, parts: SimpleNamespace, action: str, check: str) -> gr.Button:
    """What can run and why not, the sampling settings, the run button; returns Stop."""
    parts.check = gr.Markdown(check, elem_classes=["par-reason"], elem_id=f"{prefix}-check")
    with gr.Row():  # above the settings: in view at the first visit, beside the outputs
        parts.run_button = gr.Button(action, variant="primary", elem_id=f"{prefix}-run")
        stop = gr.Button("Stop", variant="stop", elem_id=f"{prefix}-stop")
    _sampling(prefix, parts)
    return stop


def _sampling(prefix: str, parts: SimpleNamespace) -> None:
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
    dice.click(cb.random_seed, None, parts.seed, queue=False, api_visibility="private")


def _record_row(prefix: str, api_name: str, export_fn, source) -> SimpleNamespace:
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
                cb.ExportOut, api_name=api_name, **SCRIPTED, **RUN)
    on(export.success, cb.enable_downloads, None, r, cb.Downloads, **UI)
    return r


GENERATE_EXAMPLES = [  # class, parallelism, ordering, initial tokens, guidance, temperature,
    # top-k, seed, label
    ("heart", 4, "distant", True, 2.0, 1.0, 0, 0, "PAR distant 4x"),
    ("heart", 1, "raster", False, 2.0, 1.0, 0, 0, "raster 1x (baseline)"),
    ("fruit", 16, "distant", True, 2.0, 1.0, 0, 7, "PAR distant 16x"),
    ("fruit", 16, "raster", True, 2.0, 1.0, 0, 7, "raster 16x (naive)"),
    ("bird", 4, "distant", False, 3.0, 0.9, 100, 3, "distant 4x, no initial tokens"),
]


def generate_tab(timings: gr.State) -> SimpleNamespace:
    """The Generate tab and its events; `runs` are the events that finish a generation."""
    g = SimpleNamespace(timings=timings, run=gr.State(None))
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            g.model = _model_dropdown("gen-model")
            g.note = gr.Markdown(cb.model_note(DEFAULT_MODEL), elem_classes=["par-reason"])
            g.klass = _class_dropdown("gen-class", info="Type to search; an index or a name")
            g.parallel = gr.Radio([(f"{p}x", p) for p in PARALLEL_CHOICES], value=4,
                                  label="Parallelism (tokens per step)",
                                  elem_id="gen-parallel")
            g.order = gr.Radio(list(GENERATE_ORDERS), value="distant", label="Ordering",
                               elem_id="gen-order")
            g.init = gr.Checkbox(value=True, label="Sequential initial tokens",
                                 info="Stage 1: the first tokens one at a time")
            stop = _run_controls("gen", g, "Generate",
                                 cb.generate_check(DEFAULT_MODEL, 4, "distant", True).check)
        with gr.Column(scale=3):
            g.status = gr.Markdown("Press **Generate** to watch an image being made.",
                                   label="Status", elem_classes=["par-status"],
                                   elem_id="gen-status")
            g.step = _replay_slider("gen-step")
            with gr.Row():
                g.image = _image("Image so far (pending cells masked)", elem_id="gen-image")
                g.entropy = _image("Uncertainty: entropy of each token", elem_id="gen-entropy")
            with gr.Row():
                g.overlay = _image("Figure 3 overlay: which step made each cell",
                                   elem_id="gen-overlay")
                g.tokens = _image("Token grid (colour = token id)", elem_id="gen-grid")
            g.record = _record_row("gen", "export", cb.export_run_files, g.run)
            with gr.Accordion("Run details", open=False):
                g.details = gr.JSON(label="Run details")
    inputs = [g.model, g.klass, g.parallel, g.order, g.init, g.cfg, g.temperature, g.top_k,
              g.seed]
    examples = gr.Examples(
        [[DEFAULT_MODEL, cb.class_label(DEFAULT_MODEL, r[0]), *r[1:8]]
         for r in GENERATE_EXAMPLES], inputs=inputs, cache_examples=False,
        label="Examples: click to run",
        example_labels=[f"{cb.class_label(DEFAULT_MODEL, r[0]).split(': ', 1)[1]} · {r[8]}"
                        for r in GENERATE_EXAMPLES])

    on(g.model.change, cb.model_changed, [g.model, g.klass], g, cb.ModelChange, **UI)
    on(gr.on, cb.generate_check, [g.model, g.parallel, g.order, g.init], g, cb.RunCheck,
       triggers=[c.change for c in (g.model, g.parallel, g.order, g.init)], **UI)
    starts = (g.run_button.click, examples.load_input_event.then)
    for start in starts:  # registered before the run: the page starts these first
        on(start, cb.reset_downloads, None, g.record, cb.ExportOut, **UI)
        on(start, cb.replay_off, None, g, cb.ReplayRange, **UI)
        _bring_into_view(start, "gen-status")
    g.runs = [on(g.run_button.click, cb.generate, inputs + [g.timings], g, cb.GenerateOut,
                 api_name="generate", show_progress="minimal", **SCRIPTED, **RUN),
              on(examples.load_input_event.then, cb.generate, inputs + [g.timings], g,
                 cb.GenerateOut, api_visibility="private", show_progress="minimal", **RUN)]
    stopped = on(stop.click, cb.stop_run, g.run, g, cb.Stopped, cancels=g.runs, api_name="stop",
                 queue=False, **SCRIPTED)
    for done in g.runs + [stopped]:
        on(done.success, cb.replay_range, g.run, g, cb.ReplayRange, **UI)
    for run in g.runs:
        on(run.failure, cb.refused, None, g, cb.Refused, **UI)
    on(g.step.input, cb.replay, [g.run, g.step], g, cb.Replayed, trigger_mode="always_last",
       api_visibility="private", concurrency_id="replay", concurrency_limit=4)
    return g


def compare_tab(timings: gr.State) -> SimpleNamespace:
    c = SimpleNamespace(timings=timings, records=gr.State(None))
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            c.model = _model_dropdown("cmp-model")
            c.klass = _class_dropdown("cmp-class")
            c.orderings = gr.CheckboxGroup(
                [(desc, key) for key, (desc, _) in COMPARE_ORDERINGS.items()],
                value=DEFAULT_COMPARE, label="Orderings (2 to 4)", elem_id="cmp-orderings")
            c.overlay = gr.Checkbox(value=True, label="Figure 3 overlay while streaming")
            stop = _run_controls("cmp", c, "Compare",
                                 cb.compare_check(DEFAULT_MODEL, DEFAULT_COMPARE).check)
        with gr.Column(scale=3):
            c.status = gr.Markdown(
                "Same class, same seed, several orderings. All advance one step per tick, so "
                "the orderings with fewer steps finish first.", label="Status",
                elem_classes=["par-status"], elem_id="cmp-status")
            c.step = _replay_slider("cmp-step")
            c.frame = _image("Side by side", elem_id="cmp-frame")
            c.table = gr.Dataframe(headers=COMPARE_HEADERS, label="Steps, time and speedup. "
                                   "Speedup in steps = tokens ÷ steps; in time = a 1x run's "
                                   "seconds ÷ this run's", interactive=False,
                                   elem_id="cmp-table")
            c.record = _record_row("cmp", "export_compare", cb.export_compare_files, c.records)
    gr.Examples(
        [[DEFAULT_MODEL, cb.class_label(DEFAULT_MODEL, "heart"),
          ["raster 1x", "distant 4x", "distant 16x"]],
         [DEFAULT_MODEL, cb.class_label(DEFAULT_MODEL, "smiling face"),
          ["distant 16x", "raster 16x", "random 4x"]],
         [DEFAULT_MODEL, cb.class_label(DEFAULT_MODEL, "country flag"),
          ["distant 4x", "distant 4x no-init"]]],
        inputs=[c.model, c.klass, c.orderings], cache_examples=False, label="Examples",
        example_labels=["baseline vs PAR 4x vs 16x", "far apart vs neighbours vs random",
                        "with vs without initial tokens"])

    on(c.model.change, cb.compare_model_changed, [c.model, c.klass], c, cb.CompareModelChange,
       **UI)
    on(gr.on, cb.compare_check, [c.model, c.orderings], c, cb.CompareCheck,
       triggers=[c.model.change, c.orderings.change], **UI)
    on(c.run_button.click, cb.reset_downloads, None, c.record, cb.ExportOut, **UI)
    on(c.run_button.click, cb.replay_off, None, c, cb.ReplayRange, **UI)
    _bring_into_view(c.run_button.click, "cmp-status")
    run = on(c.run_button.click, cb.compare,
             [c.model, c.klass, c.orderings, c.overlay, c.cfg, c.temperature, c.top_k, c.seed,
              c.timings], c, cb.CompareOut, api_name="compare", show_progress="minimal", **SCRIPTED,
             **RUN)
    stopped = stop.click(cb.compare_stopped, None, c.status, cancels=[run], **UI)
    for done in (run, stopped):
        on(done.success, cb.replay_range, c.records, c, cb.ReplayRange, **UI)
    on(run.failure, cb.compare_refused, None, c, cb.CompareRefused, **UI)
    on(c.step.input, cb.replay_comparison, [c.records, c.overlay, c.step], c,
       cb.ReplayedCompare, trigger_mode="always_last", api_visibility="private",
       concurrency_id="replay", concurrency_limit=4)
    return c


def understand_tab(demo: gr.Blocks) -> SimpleNamespace:
    u = SimpleNamespace()
    gr.Markdown("### Schedule explorer: the paper's Figure 3 for any grid")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            u.grid = gr.Slider(*GRID_RANGE, value=get_preset(DEFAULT_MODEL).args.grid, step=1,
                               label="Grid (tokens per side)")
            u.parallel = gr.Radio([(f"{p}x", p) for p in PARALLEL_CHOICES], value=4,
                                  label="Parallelism")
            u.order = gr.Radio(list(ORDERS), value="distant", label="Ordering")
            u.init = gr.Checkbox(value=True, label="Sequential initial tokens")
            u.text = gr.Markdown(label="Schedule description", elem_id="par-understand-text")
        with gr.Column(scale=2):
            u.figure = _image("Figure 3: step of each token", elem_id="sch-figure")
        with gr.Column(scale=2):
            u.step = gr.Slider(1, 2, value=1, step=1, label="Step", elem_id="sch-step")
            u.progress = _image("After this step (red: being generated)",
                                elem_id="sch-progress")
            with gr.Row(equal_height=True):
                frame_ms = gr.Slider(*FRAME_MS_RANGE, value=150, step=10,
                                     label="Frame duration (ms)")
                animate = gr.Button("Animate", elem_id="sch-animate")
            u.animation = gr.Image(label="Animation (GIF)", type="filepath",
                                   interactive=False, elem_classes=["pixelated"])
    gr.Markdown("### Uncertainty of your last run")
    gr.Markdown(ENTROPY_TEXT)
    with gr.Row():
        u.map = _image("Entropy of each token at the step it was generated", elem_id="unc-map")
        with gr.Column():
            gr.Markdown("**Mean entropy per step**", elem_classes=["par-caption"])
            u.chart = gr.Image(label="Mean entropy per step", show_label=False, type="numpy",
                               interactive=False, elem_id="unc-chart")
    u.summary = gr.Markdown("Generate an image first: its uncertainty appears here.")

    schedule = [u.grid, u.parallel, u.order, u.init]
    ui = dict(concurrency_id="ui", preprocess=False, **SCRIPTED)
    explored = on(gr.on, cb.explore, schedule, u, cb.Explored, api_name="schedule",
                  concurrency_limit=8, triggers=[demo.load] + [c.change for c in schedule], **ui)
    on(explored.failure, cb.unexplored, None, u, cb.Explored, **UI)
    # an animation of other settings (or of none that can exist) is not left up
    on(gr.on, cb.no_animation, None, u, cb.Animated, triggers=[c.change for c in schedule], **UI)
    on(u.step.change, cb.explore_step, schedule + [u.step], u, cb.Progress,
       api_name="schedule_step", **ui)
    on(animate.click, cb.animate_schedule, schedule + [frame_ms], u, cb.Animated,
       api_name="schedule_animation", **ui)
    return u


def build_demo() -> gr.Blocks:
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        timings = gr.State({})  # model -> seconds of the session's last 1x run
        gr.Markdown(HEADER, elem_id="par-header")
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                generate = generate_tab(timings)
            with gr.Tab("Compare", id="compare"):
                compare_tab(timings)
            with gr.Tab("Understand", id="understand"):
                understand = understand_tab(demo)
        with gr.Accordion("Use it from Python (gradio_client)", open=False):
            api_text = gr.Markdown(API_TEXT)
        # the example names the address this page is served at, as the browser sees it
        demo.load(None, None, api_text, js=f"() => {json.dumps(API_TEXT)}.replace("
                  f"{json.dumps(API_EXAMPLE_URL)}, window.location.origin + "
                  "window.location.pathname)", **UI)
        on(generate.model.change, cb.explorer_grid, generate.model, understand,
           cb.ExplorerGrid, **UI)
        for run in generate.runs:
            on(run.success, cb.uncertainty, generate.run, understand, cb.Uncertainty,
               api_visibility="private")
        register_mcp_tools()
    return demo
