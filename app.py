"""PAR interactive demo: `python app.py` serves it on 127.0.0.1:$GRADIO_SERVER_PORT (default 7860);
on a Hugging Face Space it listens on 0.0.0.0 and runs on the Space's GPU through `spaces`."""
import spaces  # noqa: F401  -- first: ZeroGPU must patch torch before anything touches CUDA

import logging
import os
import sys
import threading

from par_demo.presets import DEFAULT_MODEL
from par_demo.ui.guards import guard_calls, http_layers, raise_transport_limit
from par_demo.ui.inputs import MAX_UPLOAD_BYTES
from par_demo.ui.page import CSS, KEPT, THEME, build_demo
from par_demo.ui.machine import configure_cpu_threads
from par_demo.ui.runs import warm_up
from par_demo.ui.tools_app import beside_the_page, build_tools
from par_demo.ui.visitors import keep_sessions

ON_SPACE = bool(os.environ.get("SPACE_ID"))


def server_port() -> int:
    text = os.environ.get("GRADIO_SERVER_PORT", "7860")
    try:
        port = int(text)
    except ValueError:
        sys.exit(f"GRADIO_SERVER_PORT must be a port number, got {text!r}")
    if not 0 < port < 65536:
        sys.exit(f"GRADIO_SERVER_PORT must be 1..65535, got {port}")
    return port


def session_capacity() -> int:
    """Sessions whose state (their last run and Gradio's copy of the page, about 0.6 MB) is
    kept; over that, the oldest without an open page go first (visitors.py)."""
    return max(1, int(os.environ.get("PAR_SESSIONS", "500")))


def concurrency() -> int:
    """Runs at once per event group; more wait in the queue (and see their position)."""
    return max(1, int(os.environ.get("PAR_CONCURRENCY", "2")))


logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("par_demo").setLevel(logging.INFO)  # runs that end early, server errors
configure_cpu_threads(concurrency())
demo = build_demo()
guard_calls(demo)  # every call's inputs checked for shape before Gradio processes them
demo.queue(default_concurrency_limit=concurrency(), max_size=int(os.environ.get("PAR_QUEUE", "32")))
tools = build_tools()  # the MCP server's list of tools (tools_app.py); they run on the page


def _warm_up() -> None:
    try:
        warm_up(DEFAULT_MODEL)
    except Exception:  # the page still serves; the first run then loads what it needs
        logging.getLogger("par_demo").exception("warm-up failed")

if __name__ == "__main__":
    # in the background: the page answers at once, the first visitor finds everything warm
    threading.Thread(target=_warm_up, name="par-warm-up", daemon=True).start()
    demo.launch(
        server_name="0.0.0.0" if ON_SPACE else os.environ.get("PAR_HOST", "127.0.0.1"),
        server_port=server_port(),
        theme=THEME,
        css=CSS,
        show_error=False,
        state_session_capacity=session_capacity(),
        mcp_server=False,  # the page documents its API; /gradio_api/mcp/ is the tools' app's
        # the tools' MCP server at the page's address, and in front of Gradio's routes the
        # layers that answer malformed and hostile use (guards/)
        app_kwargs={**beside_the_page(tools), "middleware": http_layers(demo)},
        max_file_size=MAX_UPLOAD_BYTES,
        enable_monitoring=False,  # Gradio's /monitoring would tell anyone the traffic figures
        prevent_thread_lock=True,
    )
    raise_transport_limit(tools)  # the MCP server is the tools' app's
    keep_sessions(demo, KEPT)
    demo.block_thread()
