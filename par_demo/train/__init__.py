"""Training the embedded emoji model: dataset, VQ tokenizer, any-order generator, evaluation.

Each stage is a module with a command line (python -m par_demo.train.<stage> --help); see
docs/training.md for the whole pipeline. Nothing here is imported by the app.
"""
