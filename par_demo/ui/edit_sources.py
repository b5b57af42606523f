"""The pictures the Edit tab starts from (an example emoji, the Generate tab's last run, an
upload) and the masks painted on them: reading the picture editor's value, the cells a brush
paints, and the picture with those cells marked."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from par_demo.classes import heldout_class
from par_demo.editing import load_editing_tokenizer
from par_demo.heldout import HeldoutGrids
from par_demo.masks import CellMask, read_mask
from par_demo.pictures import EditError
from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.preview import decode_tokens, enlarge
from par_demo.ui import views, widgets as w
from par_demo.ui.errors import fail, friendly, shown
from par_demo.ui.runs import RunRecord

# held-out pictures offered to edit (rows of assets/heldout_codes.npz), one group each: a
# smiling face, a heart, a dog, a bird, a flower, a fruit, a train and the sun
EXAMPLE_ROWS = (0, 8, 20, 22, 26, 28, 36, 42)


@lru_cache(maxsize=2)
def tokenizer(model: str):
    """The model's tokenizer with its encoder, on the CPU (pictures are encoded there)."""
    return load_editing_tokenizer(get_preset(model))


@dataclass(frozen=True)
class Example:
    label: str  # the example dropdown's choice: "1. smiling face"
    klass: str  # its class as the class dropdown shows it: "0: smiling face"
    picture: np.ndarray


@lru_cache(maxsize=1)
def example_pictures() -> tuple[Example, ...]:
    """Held-out emoji of several groups, decoded from their recorded tokens, each with the class
    the default model draws it as."""
    grids = HeldoutGrids.load()
    preset = get_preset(DEFAULT_MODEL)
    names = preset.class_names()
    rows = list(EXAMPLE_ROWS)
    codes = grids.codes[rows].reshape(len(rows), -1)
    images = decode_tokens(tokenizer(DEFAULT_MODEL), codes, grids.grid)  # on the CPU
    classes = [heldout_class(preset.classes, str(grids.group[r]), int(grids.labels[r]))
               for r in rows]
    return tuple(Example(f"{i + 1}. {names.names[c]}", names.label(c), image)
                 for i, (c, image) in enumerate(zip(classes, images)))


@dataclass
class Loaded:
    editor: Any
    source_note: Any = w.skip()
    klass: Any = w.skip()


@friendly
def load_example(label) -> Loaded:
    """An example emoji to edit, with its own class picked: regenerating keeps what it shows."""
    examples = {e.label: e for e in example_pictures()}
    if label not in examples:
        fail(f"example must be one of: {', '.join(examples)}; got {shown(label)}")
    example = examples[label]
    return Loaded(editor_value(example.picture),
                  f"Example {label}: paint or pick a region.", example.klass)


@friendly
def load_generated(record) -> Loaded:
    """The Generate tab's last run, finished, as the picture to edit, with its class."""
    if not isinstance(record, RunRecord) or not record.complete:
        fail("finish a run on the Generate tab first; its picture is then edited here",
             title="No finished run")
    # the editing tokenizer, on the CPU: no model (nor GPU) is needed to decode a picture
    picture = decode_tokens(tokenizer(record.model), record.tokens[-1][None].astype(np.int64),
                            record.grid)[0]
    return Loaded(editor_value(picture), f"The last Generate run ({record.class_label}, "
                  f"{record.spec.label}, seed {record.config.seed}).", record.class_label)


def editor_value(picture: np.ndarray) -> dict:
    big = enlarge(picture, views.DISPLAY_PX)  # painted at the displayed size
    return {"background": big, "layers": [], "composite": big}


def _file(value, field_name: str) -> str:
    """The path of an uploaded file's payload (Gradio has moved it into its cache)."""
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        return value["path"]
    if isinstance(value, str) and value:
        return value
    fail(f"{field_name}: upload a picture (PNG, JPEG, WebP or GIF), pick an example or use the "
         f"last Generate run; got {shown(value)}", title="No picture")


def editor_files(value) -> tuple[str, list[str]]:
    """(picture, brush layers) of an ImageEditor payload: the background is the picture."""
    if not isinstance(value, dict):
        _file(value, "picture")
    picture = value.get("background") or value.get("composite")
    layers = value.get("layers") or []
    if not isinstance(layers, list):
        fail(f"mask: the brush layers must be a list of pictures, got {shown(layers)}")
    return _file(picture, "picture"), [_file(layer, "mask") for layer in layers if layer]


def painted_mask(layers: list[str], picture_size: tuple[int, int], grid: int) -> CellMask:
    """The cells any brush layer paints (read from the layers' alpha)."""
    if not layers:
        raise EditError("mask: nothing is painted; paint the region to regenerate with the "
                        "brush, or pick a preset region")
    masks = [read_mask(layer, picture_size, grid) for layer in layers]
    return CellMask(grid, np.logical_or.reduce([m.selected for m in masks]))


def cells_view(picture: np.ndarray, mask: CellMask, size: int = views.DISPLAY_PX) -> np.ndarray:
    """The picture with the cells to regenerate tinted blue (emoji are mostly yellow) and the
    grid drawn."""
    image = enlarge(picture, size).astype(np.float32)
    f = image.shape[0] // mask.grid
    selected = mask.selected.reshape(mask.grid, mask.grid).repeat(f, 0).repeat(f, 1)
    image[selected] = image[selected] * 0.45 + np.array([40, 90, 255]) * 0.55
    image[::f, :] = image[:, ::f] = 255
    return image.round().clip(0, 255).astype(np.uint8)
