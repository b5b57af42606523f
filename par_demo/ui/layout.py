"""The page: Generate, Compare and Understand tabs, wired to the callbacks, with named API
endpoints (/generate, /stop, /export, /compare, /export_compare, /schedule, /schedule_step,
/schedule_animation). Events that take a visitor's values skip Gradio's preprocessing
(preprocess=False) so that our own checks answer, naming the field at fault."""
from __future__ import annotations

import gradio as gr

from par_demo.presets import DEFAULT_MODEL, PRESETS, get_preset
from par_demo.orders import ORDERS
from par_demo.ui import callbacks as cb
from par_demo.ui.explorer import GRID_RANGE, schedule_figure, schedule_progress
from par_demo.ui.errors import friendly
from par_demo.ui.export import FRAME_MS_RANGE
from par_demo.ui.models import availability
from par_demo.ui.runs import (COMPARE_HEADERS, COMPARE_ORDERINGS, DEFAULT_COMPARE,
                              GENERATE_ORDERS, MAX_SEED, PARALLEL_CHOICES)

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

API_TEXT = """
Every action is a named endpoint. From Python:

```python
from gradio_client import Client
client = Client("http://127.0.0.1:7860/")
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
`client.submit(...)` streams the steps of `/generate` and `/compare`; other endpoints:
`/schedule`, `/schedule_step`, `/schedule_animation`, `/stop`.
"""


def _image(label: str, **kwargs) -> gr.Image:
    """A crisp output picture with its caption above it (Gradio's floating label would cover
    the picture's corner)."""
    with gr.Column(min_width=200):
        gr.Markdown(f"**{label}**", elem_classes=["par-caption"])
        return gr.Image(label=label, show_label=False, type="numpy", format="png",
                        interactive=False, elem_classes=["pixelated"],
                        buttons=["download", "fullscreen"], **kwargs)


def _model_dropdown(elem_id: str) -> gr.Dropdown:
    choices = [(availability()[name].label, name) for name in PRESETS]
    return gr.Dropdown(choices, value=DEFAULT_MODEL, label="Model", elem_id=elem_id,
                       info="Released checkpoints need a GPU and their files")


def _sampling(prefix: str):
    preset = get_preset(DEFAULT_MODEL)
    with gr.Accordion("Sampling", open=True):
        cfg = gr.Slider(0, 10, value=preset.sampling.cfg_scale, step=0.05,
                        label="Guidance scale", info="1 = no classifier-free guidance")
        temperature = gr.Slider(0.05, 3, value=preset.sampling.temperature, step=0.05,
                                label="Temperature")
        top_k = gr.Number(value=preset.sampling.top_k, precision=0, minimum=0, label="Top-k",
                          info="0 keeps every token")
        with gr.Row(equal_height=True):
            seed = gr.Number(value=0, precision=0, minimum=0, maximum=MAX_SEED, label="Seed",
                             scale=4, elem_id=f"{prefix}-seed")
            dice = gr.Button("⚄ Random", scale=1, min_width=90, elem_id=f"{prefix}-dice")
    dice.click(cb.random_seed, None, seed, queue=False, api_visibility="private")
    return cfg, temperature, top_k, seed


def _export_row(prefix: str):
    with gr.Accordion("Record: GIF and MP4", open=True):
        with gr.Row(equal_height=True):
            overlay = gr.Checkbox(value=True, label="Figure 3 overlay on the frames")
            frame_ms = gr.Slider(*FRAME_MS_RANGE, value=120, step=10,
                                 label="Frame duration (ms)")
            export = gr.Button("Make GIF & MP4", variant="secondary", elem_id=f"{prefix}-export")
        with gr.Row():
            gif = gr.DownloadButton("⬇ Download GIF", interactive=False, elem_id=f"{prefix}-gif")
            mp4 = gr.DownloadButton("⬇ Download MP4", interactive=False, elem_id=f"{prefix}-mp4")
        note = gr.Markdown()
        animation = gr.Image(label="Animation", type="filepath", interactive=False,
                             elem_classes=["pixelated"])
    return overlay, frame_ms, export, gif, mp4, note, animation


def build_demo() -> gr.Blocks:
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        run_state = gr.State(None)
        compare_state = gr.State(None)
        timings = gr.State({})  # model -> seconds of the session's last 1x run
        gr.Markdown(HEADER, elem_id="par-header")

        with gr.Tabs():
            # ------------------------------------------------------------ Generate
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=300):
                        model = _model_dropdown("gen-model")
                        note = gr.Markdown(cb.model_note(DEFAULT_MODEL),
                                           elem_classes=["par-reason"])
                        klass = gr.Dropdown(cb.class_choices(DEFAULT_MODEL),
                                            value=cb.default_class(DEFAULT_MODEL),
                                            label="Class", filterable=True,
                                            allow_custom_value=True, elem_id="gen-class",
                                            info="Type to search; an index or a name")
                        parallel = gr.Radio([(f"{p}x", p) for p in PARALLEL_CHOICES], value=4,
                                            label="Parallelism (tokens per step)")
                        order = gr.Radio(list(GENERATE_ORDERS), value="distant", label="Ordering")
                        init = gr.Checkbox(value=True, label="Sequential initial tokens",
                                           info="Stage 1: the first tokens one at a time")
                        check = gr.Markdown(cb.generate_check(DEFAULT_MODEL, 4, "distant", True)[0],
                                            elem_classes=["par-reason"])
                        cfg, temperature, top_k, seed = _sampling("gen")
                        with gr.Row():
                            run_btn = gr.Button("Generate", variant="primary", elem_id="gen-run")
                            stop_btn = gr.Button("Stop", variant="stop", elem_id="gen-stop")
                    with gr.Column(scale=3):
                        status = gr.Markdown("Press **Generate** to watch an image being made.",
                                             elem_classes=["par-status"], elem_id="gen-status")
                        with gr.Row():
                            image = _image("Image so far (pending cells masked)",
                                           elem_id="gen-image")
                            entropy_img = _image("Uncertainty: entropy of each token",
                                                 elem_id="gen-entropy")
                        with gr.Row():
                            overlay_img = _image("Figure 3 overlay: which step made each cell",
                                                 elem_id="gen-overlay")
                            grid_img = _image("Token grid (colour = token id)", elem_id="gen-grid")
                        (ex_overlay, ex_ms, export_btn, gif_btn, mp4_btn, ex_note,
                         ex_anim) = _export_row("gen")
                        with gr.Accordion("Run details", open=False):
                            details = gr.JSON(label="Run details")
                gen_inputs = [model, klass, parallel, order, init, cfg, temperature, top_k, seed]
                rows = [("heart", 4, "distant", True, 2.0, 1.0, 0, 0, "PAR distant 4x"),
                        ("heart", 1, "raster", False, 2.0, 1.0, 0, 0, "raster 1x (baseline)"),
                        ("fruit", 16, "distant", True, 2.0, 1.0, 0, 7, "PAR distant 16x"),
                        ("fruit", 16, "raster", True, 2.0, 1.0, 0, 7, "raster 16x (naive)"),
                        ("bird", 4, "distant", False, 3.0, 0.9, 100, 3,
                         "distant 4x, no initial tokens")]
                examples = gr.Examples(
                    [[DEFAULT_MODEL, cb.class_label(DEFAULT_MODEL, r[0]), *r[1:8]] for r in rows],
                    inputs=gen_inputs, cache_examples=False, label="Examples: click to run",
                    example_labels=[f"{cb.class_label(DEFAULT_MODEL, r[0]).split(': ', 1)[1]}"
                                    f" · {r[8]}" for r in rows])

            # ------------------------------------------------------------ Compare
            with gr.Tab("Compare", id="compare"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=300):
                        c_model = _model_dropdown("cmp-model")
                        c_class = gr.Dropdown(cb.class_choices(DEFAULT_MODEL),
                                              value=cb.default_class(DEFAULT_MODEL),
                                              label="Class", filterable=True,
                                              allow_custom_value=True, elem_id="cmp-class")
                        orderings = gr.CheckboxGroup(
                            [(desc, key) for key, (desc, _) in COMPARE_ORDERINGS.items()],
                            value=DEFAULT_COMPARE, label="Orderings (2 to 4)",
                            elem_id="cmp-orderings")
                        c_overlay = gr.Checkbox(value=True,
                                                label="Figure 3 overlay while streaming")
                        c_check = gr.Markdown(cb.compare_check(DEFAULT_MODEL, DEFAULT_COMPARE)[0],
                                              elem_classes=["par-reason"])
                        c_cfg, c_temperature, c_top_k, c_seed = _sampling("cmp")
                        with gr.Row():
                            c_run = gr.Button("Compare", variant="primary", elem_id="cmp-run")
                            c_stop = gr.Button("Stop", variant="stop", elem_id="cmp-stop")
                    with gr.Column(scale=3):
                        c_status = gr.Markdown(
                            "Same class, same seed, several orderings. All advance one step per "
                            "tick, so the orderings with fewer steps finish first.",
                            elem_classes=["par-status"], elem_id="cmp-status")
                        c_frame = _image("Side by side", elem_id="cmp-frame")
                        c_table = gr.Dataframe(headers=COMPARE_HEADERS, label="Steps, time and "
                                               "speedup. Speedup in steps = tokens ÷ steps; in "
                                               "time = a 1x run's seconds ÷ this run's",
                                               interactive=False, elem_id="cmp-table")
                        (cx_overlay, cx_ms, c_export, c_gif, c_mp4, cx_note,
                         cx_anim) = _export_row("cmp")
                gr.Examples(
                    [[DEFAULT_MODEL, cb.class_label(DEFAULT_MODEL, "heart"),
                      ["raster 1x", "distant 4x", "distant 16x"]],
                     [DEFAULT_MODEL, cb.class_label(DEFAULT_MODEL, "smiling face"),
                      ["distant 16x", "raster 16x", "random 4x"]],
                     [DEFAULT_MODEL, cb.class_label(DEFAULT_MODEL, "country flag"),
                      ["distant 4x", "distant 4x no-init"]]],
                    inputs=[c_model, c_class, orderings], cache_examples=False,
                    label="Examples", example_labels=[
                        "baseline vs PAR 4x vs 16x", "far apart vs neighbours vs random",
                        "with vs without initial tokens"])

            # ------------------------------------------------------------ Understand
            with gr.Tab("Understand", id="understand"):
                gr.Markdown("### Schedule explorer: the paper's Figure 3 for any grid")
                with gr.Row():
                    with gr.Column(scale=1, min_width=260):
                        s_grid = gr.Slider(*GRID_RANGE, value=24, step=1,
                                           label="Grid (tokens per side)")
                        s_parallel = gr.Radio([(f"{p}x", p) for p in PARALLEL_CHOICES], value=4,
                                              label="Parallelism")
                        s_order = gr.Radio(list(ORDERS), value="distant", label="Ordering")
                        s_init = gr.Checkbox(value=True, label="Sequential initial tokens")
                        s_text = gr.Markdown()
                    with gr.Column(scale=2):
                        s_figure = _image("Figure 3: step of each token", elem_id="sch-figure")
                    with gr.Column(scale=2):
                        s_step = gr.Slider(1, 2, value=1, step=1, label="Step",
                                           elem_id="sch-step")
                        s_progress = _image("After this step (red: being generated)",
                                            elem_id="sch-progress")
                        with gr.Row(equal_height=True):
                            s_ms = gr.Slider(*FRAME_MS_RANGE, value=150, step=10,
                                             label="Frame duration (ms)")
                            s_animate = gr.Button("Animate", elem_id="sch-animate")
                        s_anim = gr.Image(label="Animation (GIF)", type="filepath",
                                          interactive=False, elem_classes=["pixelated"])
                gr.Markdown("### Uncertainty of your last run")
                gr.Markdown(ENTROPY_TEXT)
                with gr.Row():
                    u_map = _image("Entropy of each token at the step it was generated",
                                   elem_id="unc-map")
                    with gr.Column():
                        gr.Markdown("**Mean entropy per step**", elem_classes=["par-caption"])
                        u_chart = gr.Image(label="Mean entropy per step", show_label=False,
                                           type="numpy", interactive=False, elem_id="unc-chart")
                u_text = gr.Markdown("Generate an image first: its uncertainty appears here.")

        with gr.Accordion("Use it from Python (gradio_client)", open=False):
            gr.Markdown(API_TEXT)

        # ------------------------------------------------------------ events: generate
        ui = dict(queue=False, api_visibility="private")
        model.change(cb.model_changed, [model, klass],
                     [klass, cfg, parallel, order, init, note], **ui)
        gr.on([c.change for c in (model, parallel, order, init)], cb.generate_check,
              [model, parallel, order, init], [check, run_btn, init], **ui)
        gen_outputs = [image, overlay_img, grid_img, entropy_img, status, details, run_state,
                       timings]
        for trigger in (run_btn.click, examples.load_input_event.then):
            trigger(cb.reset_downloads, None, [gif_btn, mp4_btn, ex_anim, ex_note], **ui)
        run = run_btn.click(cb.generate, gen_inputs + [timings], gen_outputs,
                            api_name="generate", concurrency_id="model", preprocess=False,
                            show_progress="minimal")
        example_run = examples.load_input_event.then(
            cb.generate, gen_inputs + [timings], gen_outputs, api_visibility="private",
            concurrency_id="model", show_progress="minimal", preprocess=False)
        for event in (run, example_run):
            event.success(cb.uncertainty, run_state, [u_map, u_chart, u_text],
                          api_visibility="private")
        stop_btn.click(cb.stop_run, run_state, [status, details], cancels=[run, example_run],
                       api_name="stop", queue=False)
        export_btn.click(cb.export_run_files, [run_state, ex_overlay, ex_ms],
                         [gif_btn, mp4_btn, ex_anim, ex_note], api_name="export",
                         concurrency_id="model", preprocess=False
                         ).success(cb.enable_downloads, None, [gif_btn, mp4_btn], **ui)

        # ------------------------------------------------------------ events: compare
        c_model.change(cb.compare_model_changed, [c_model, c_class], [c_class, c_cfg], **ui)
        gr.on([c_model.change, orderings.change], cb.compare_check, [c_model, orderings],
              [c_check, c_run], **ui)
        c_run.click(cb.reset_downloads, None, [c_gif, c_mp4, cx_anim, cx_note], **ui)
        c_event = c_run.click(
            cb.compare, [c_model, c_class, orderings, c_overlay, c_cfg, c_temperature, c_top_k,
                         c_seed, timings],
            [c_frame, c_table, c_status, compare_state], api_name="compare",
            concurrency_id="model", preprocess=False, show_progress="minimal")
        c_stop.click(lambda: "■ **Stopped.**", None, c_status, cancels=[c_event], queue=False,
                     api_visibility="private")
        c_export.click(cb.export_compare_files, [compare_state, cx_overlay, cx_ms],
                       [c_gif, c_mp4, cx_anim, cx_note], api_name="export_compare",
                       concurrency_id="model", preprocess=False
                       ).success(cb.enable_downloads, None, [c_gif, c_mp4], **ui)

        # ------------------------------------------------------------ events: understand
        s_inputs = [s_grid, s_parallel, s_order, s_init]
        gr.on([demo.load] + [c.change for c in s_inputs], _explore, s_inputs,
              [s_figure, s_text, s_step, s_progress], api_name="schedule",
              concurrency_id="ui", concurrency_limit=8, preprocess=False)
        s_step.change(friendly(schedule_progress), s_inputs + [s_step], s_progress,
                      api_name="schedule_step", concurrency_id="ui", preprocess=False)
        s_animate.click(cb.animate_schedule, s_inputs + [s_ms], s_anim,
                        api_name="schedule_animation", concurrency_id="ui", preprocess=False)
    return demo


@friendly
def _explore(grid, parallel, order, init_tokens):
    image, text, num_steps = schedule_figure(grid, parallel, order, init_tokens)
    step = gr.update(maximum=max(num_steps, 2), value=1, interactive=image is not None)
    return image, text, step, schedule_progress(grid, parallel, order, init_tokens, 1)
