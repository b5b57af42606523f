"""The shape of every call's inputs, checked before Gradio processes them: one value per input
the endpoint declares (no fewer, no more), files only where a component takes files and only
ones uploaded to this app (a URL is never fetched), an ImageEditor value of Gradio's own shape,
an example's index within the examples. Gradio's own checks would answer these with a
traceback and a message naming no field; the app's reading of each value (inputs.py) comes
after, on values of the right shape."""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio import utils as gradio_utils
from gradio.block_function import BlockFunction
from pydantic import ValidationError

from par_demo.ui.errors import fail, shown

FILE_META = {"_type": "gradio.FileData"}
UPLOAD_ROUTE = "POST /gradio_api/upload"
EDITOR_SHAPE = ('{"background": file, "layers": [file, ...], "composite": file}, each file '
                f'{{"path": <a path {UPLOAD_ROUTE} returned>, "meta": {json.dumps(FILE_META)}}}')


@dataclass(frozen=True)
class Field:
    name: str
    block: gr.components.Component


def _parameter_names(fn: BlockFunction) -> list[str]:
    """The callback's parameter names, one per input: the names API callers know."""
    try:
        params = inspect.signature(fn.fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.name != "request"
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def fields(fn: BlockFunction) -> list[Field]:
    names = _parameter_names(fn)
    if len(names) < len(fn.inputs):
        names = [str(getattr(b, "label", None) or f"input {i + 1}")
                 for i, b in enumerate(fn.inputs)]
    return [Field("example" if isinstance(b, gr.Dataset) else name, b)
            for name, b in zip(names, fn.inputs)]


def _count_refused(fn: BlockFunction, got: int) -> None:
    visible = [f.name for f in fields(fn) if not f.block.skip_api]
    fail(f"/{fn.api_name} takes {len(visible)} input{'s' if len(visible) != 1 else ''}"
         f"{' (' + ', '.join(visible) + ')' if visible else ''}, got {got}",
         title="Wrong number of inputs")


def complete_inputs(fn: BlockFunction, inputs) -> list:
    """One value per declared input: a caller may leave out the session's state (Gradio keeps
    it; the page sends null for it), nothing else."""
    if not isinstance(inputs, list):
        _count_refused(fn, 0)
    states = [i for i, b in enumerate(fn.inputs) if b.skip_api]
    if len(inputs) == len(fn.inputs):
        if any(inputs[i] is not None for i in states):  # a value more, not the state
            _count_refused(fn, len(inputs))
        return inputs
    if len(inputs) != len(fn.inputs) - len(states):
        _count_refused(fn, len(inputs))
    given = iter(inputs)
    return [None if i in states else next(given) for i in range(len(fn.inputs))]


def _file_objects(value):
    """Every dict in `value` that Gradio would treat as a file (it has a "path")."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "path" in item:
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _upload_folder() -> Path:
    return Path(gradio_utils.get_upload_folder()).resolve()


def _check_file(name: str, file: dict) -> None:
    path = file.get("path")
    if not isinstance(path, str) or not path:
        fail(f"{name}: a file's path must be text, got {shown(path)}; send {EDITOR_SHAPE}")
    if "://" in path or path.startswith("data:"):
        fail(f"{name}: {shown(path)} is a URL; nothing is fetched: upload the picture "
             f"({UPLOAD_ROUTE}) and send the path it returns")
    local = Path(path).resolve()
    if not local.is_relative_to(_upload_folder()) or not local.is_file():
        fail(f"{name}: {shown(path)} is no file uploaded to this app; upload the picture "
             f"({UPLOAD_ROUTE}) and send the path it returns")


def _check_files(field: Field, value) -> None:
    files = list(_file_objects(value))
    takes_files = getattr(field.block, "data_model", None) is not None
    if files and not takes_files:
        fail(f"{field.name} takes no file, got {shown(value)}")
    for file in files:
        _check_file(field.name, file)


def _check_editor(field: Field, value) -> None:
    if value is None:
        return  # no picture: the callback says what to give
    try:
        field.block.data_model.model_validate(value, context={"validate_meta": True})
    except ValidationError:
        fail(f"{field.name} must be an image editor value: {EDITOR_SHAPE}; got {shown(value)}")


def _check_example(field: Field, value) -> None:
    count = len(field.block.samples)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < count:
        fail(f"example must be an index 0..{count - 1} of the examples, got {shown(value)}")


SHAPES = {gr.ImageEditor: _check_editor, gr.Dataset: _check_example}


def check_inputs(fn: BlockFunction, inputs) -> list:
    """The inputs, one per declared input, or InputError naming the field at fault."""
    inputs = complete_inputs(fn, inputs)
    for field, value in zip(fields(fn), inputs):
        if field.block.skip_api:
            continue  # the session's state: Gradio ignores the value
        _check_files(field, value)
        check = SHAPES.get(type(field.block))
        if check:
            check(field, value)
    return inputs


def guard_calls(demo: gr.Blocks) -> None:
    """Check every call's inputs before Gradio's processing (all routes reach process_api:
    the queue, /run, /call, the MCP tools). A generator's later steps carry no new inputs."""
    process = demo.process_api

    async def checked(block_fn, inputs, state=None, request=None, iterator=None, **kwargs):
        fn = demo.fns[block_fn] if isinstance(block_fn, int) else block_fn
        if iterator is None and not fn.batch:
            inputs = check_inputs(fn, inputs)
        return await process(fn, inputs, state, request, iterator, **kwargs)

    demo.process_api = checked
