"""The Measure tab's callbacks on the shipped model: a click on a cell gives that cell's map (the
figures' numbers are checked in test_dependency.py)."""
from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from par_demo.ui import measure


def click(x: int, y: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": [x, y], "value": None})


def test_a_click_measures_the_cell_under_it():
    shown = measure.show_picture(2)
    assert shown.picture.shape == (256, 256, 3) and shown.map is None
    top_left = measure.measure_dependency(2, True, click(5, 5))
    bottom_right = measure.measure_dependency(2, False, click(250, 250))  # unconditional
    assert "row 0, col 0" in top_left.summary and "row 15, col 15" in bottom_right.summary
    assert top_left.map.shape == bottom_right.map.shape
    assert not np.array_equal(top_left.map, bottom_right.map)
    with pytest.raises(gr.Error, match="picture must be"):
        measure.show_picture(10_000)


def test_the_ordering_figure_refuses_a_parallelism_it_does_not_offer():
    with pytest.raises(gr.Error, match="parallelism must be one of"):
        measure.measure_orderings("2x")
