"""The Gradio app: the page and its tabs (one module each), the requests they read, the runs and their worker, exports, files, model availability."""
