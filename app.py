"""PAR interactive demo: `python app.py` serves it on 127.0.0.1:$GRADIO_SERVER_PORT (default 7860);
on a Hugging Face Space it listens on 0.0.0.0 and runs on the Space's GPU through `spaces`."""
import spaces  # noqa: F401  -- first: ZeroGPU must patch torch before anything touches CUDA

import logging
import os
import sys

from par_demo.ui.inputs import MAX_UPLOAD_BYTES
from par_demo.ui.layout import CSS, THEME, build_demo
from par_demo.ui.machine import configure_cpu_threads

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


def concurrency() -> int:
    """Runs at once per event group; more wait in the queue (and see their position)."""
    return max(1, int(os.environ.get("PAR_CONCURRENCY", "2")))


logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("par_demo").setLevel(logging.INFO)  # runs that end early, server errors
configure_cpu_threads(concurrency())
demo = build_demo()
demo.queue(default_concurrency_limit=concurrency(), max_size=int(os.environ.get("PAR_QUEUE", "32")))

if __name__ == "__main__":
    demo.launch(
        server_name="0.0.0.0" if ON_SPACE else os.environ.get("PAR_HOST", "127.0.0.1"),
        server_port=server_port(),
        theme=THEME,
        css=CSS,
        show_error=False,
        max_file_size=MAX_UPLOAD_BYTES,
        enable_monitoring=False,  # Gradio's /monitoring would tell anyone the traffic figures
    )
