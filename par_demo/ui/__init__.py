"""The Gradio app: layout (Blocks), callbacks, model availability and cache, runs, exports."""
