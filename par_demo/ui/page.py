"""The page: a header, the tabs (one module each, in TABS: a new tab is one module and one
line), the API example and the MCP tools (listed by an app of their own, tools_app.py; run
here). Events that take a visitor's values skip Gradio's preprocessing (preprocess=False) so
that our own checks answer, naming the field at fault."""
from __future__ import annotations

import json
from types import SimpleNamespace

import gradio as gr

from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.ui import compare, edit, generate, measure, understand, widgets as w
from par_demo.ui.mcp_tools import register_mcp_tools
from par_demo.ui.visitors import KeptSessions

TABS = (generate, compare, edit, understand, measure)  # each: TITLE, TAB_ID, build(page)

# the sessions the server keeps (app.py makes it Gradio's store once launched)
KEPT = KeptSessions(idle_seconds=w.RUN_KEEP_SECONDS)

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
.par-picture { min-height: 300px; }  /* a run that starts does not collapse the layout */
@media (max-width: 640px) {  /* phones: comparisons at full size, scrolled sideways */
  #cmp-frame .image-container { overflow-x: auto !important; }
  #cmp-frame img { max-width: none !important; width: auto !important; }
  /* from the first panel: centred, an overflowing picture's left side could not be reached */
  #cmp-frame button { justify-content: flex-start !important; }
  #cmp-table { overflow-x: auto; }
  .par-scroll-hint { display: block !important; }
  /* every tab's name in the bar (Gradio moves those that do not fit behind a "..." menu) */
  .tab-wrapper button { padding: 4px 5px !important; font-size: 0.85em !important; }
  /* the run button within the first screen: a shorter header; the model's note after it */
  #par-header h1 { font-size: 1.25em; }
  #par-header p { font-size: 0.8em; line-height: 1.3; }
  #gen-model-note { order: 1; }
  .par-reason { font-size: 0.82em; }
  .par-picture { min-height: 0; }
}
.par-scroll-hint { display: none; }
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


_S = get_preset(DEFAULT_MODEL).sampling  # the example reproduces the page's defaults
API_EXAMPLE_URL = "http://127.0.0.1:7860/"  # replaced on the page by the address it is served at
API_TEXT = f"""
Every action is a named endpoint. From Python:

```python
from gradio_client import Client
client = Client("{API_EXAMPLE_URL}")
client.view_api()  # every endpoint and its named parameters
# by name; the others take the page's values
image, overlay, tokens, entropy, status, details = client.predict(
    class_name="heart", parallel=16, seed=0, api_name="/generate")
# or all in order: model, class, parallelism, ordering, initial tokens, guidance,
# temperature, top-k, seed
image, overlay, tokens, entropy, status, details = client.predict(
    {DEFAULT_MODEL!r}, "heart", 4, "distant", True, {_S.cfg_scale}, {_S.temperature}, {_S.top_k}, 0,
    api_name="/generate")
# Figure 3 overlay on the frames, frame duration (ms): files of the session's last run
gif, mp4, preview, note = client.predict(True, 80, api_name="/export")
# model, class, 2 to 4 orderings, overlay, guidance, temperature, top-k, seed
frame, table, status = client.predict({DEFAULT_MODEL!r}, "heart",
    ["raster 1x", "distant 4x"], True, {_S.cfg_scale}, {_S.temperature}, {_S.top_k}, 0,
    api_name="/compare")
gif, mp4, preview, note = client.predict(False, 120, api_name="/export_compare")
```
`client.submit(...)` streams the steps of `/generate` and `/compare`;
`client.predict(api_name="/stop")` ends your own runs (or `job.cancel()`). Other endpoints:
`/schedule`, `/schedule_step`, `/schedule_animation`; the Edit tab's `/edit`, `/edit_compare`,
`/export_edit` and `/branch` (see the README). Inputs are read strictly: numbers as
numbers in the range of the page's controls, `True` / `False` for switches.
"""


def build_demo() -> gr.Blocks:
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        # shared by the tabs: model -> seconds of the session's last 1x run, and each other
        page = SimpleNamespace(demo=demo, timings=gr.State({}), tabs={})
        gr.Markdown(HEADER, elem_id="par-header")
        with gr.Tabs():
            for tab in TABS:
                with gr.Tab(tab.TITLE, id=tab.TAB_ID):
                    page.tabs[tab.TAB_ID] = tab.build(page)
        with gr.Accordion("Use it from Python (gradio_client)", open=False):
            api_text = gr.Markdown(API_TEXT)
        # the example names the address this page is served at, as the browser sees it
        demo.load(None, None, api_text, js=f"() => {json.dumps(API_TEXT)}.replace("
                  f"{json.dumps(API_EXAMPLE_URL)}, window.location.origin + "
                  "window.location.pathname)", **w.UI)
        demo.load(KEPT.page_opened, None, None, **w.UI)
        demo.unload(KEPT.page_closed)
        # the MCP tools run here, in the page's queue; tools_app.py's Blocks lists them
        register_mcp_tools(api_visibility="undocumented")
    return demo
