"""The Measure tab's callbacks on the shipped files: a click on a cell gives the paper's
estimator's map for that cell, then the model's belief about the picture, each labelled, with a
sentence comparing them (the figures' numbers are checked in test_estimator.py and
test_dependency.py)."""
from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from par_demo.training_codes import shipped_estimator
from par_demo.ui import measure


def click(x: int, y: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": [x, y], "value": None})


def test_a_click_shows_the_estimators_map_then_the_models_belief_for_the_cell_under_it():
    shown = measure.show_picture(2)
    assert shown.picture.shape == (256, 256, 3) and shown.map is None and shown.cell is None
    top_left = measure.measure_dependency(2, click(5, 5))
    bottom_right = measure.measure_dependency(2, click(250, 250))
    assert top_left.cell == [0, 0] and bottom_right.cell == [15, 15]
    pictures = shipped_estimator().pictures
    assert f"Over {pictures} real emoji (the paper's estimator)" in top_left.estimated_summary
    assert "row 0, col 0" in top_left.estimated_summary
    assert not np.array_equal(top_left.estimated, bottom_right.estimated)
    assert top_left.map is None and "Asking the model" in top_left.summary
    believed = measure.model_belief(2, True, top_left.cell)
    unconditional = measure.model_belief(2, False, top_left.cell)
    assert "What this model believes about this picture" in believed.summary
    assert not np.array_equal(believed.map, unconditional.map)
    assert believed.comparison.startswith(("**They agree", "**They disagree"))
    with pytest.raises(gr.Error, match="picture must be"):
        measure.show_picture(10_000)


def test_the_comparison_names_a_disagreement_and_why():
    data = {"1": 0.9, "2": 0.3, "4+": 0.06}
    assert "They agree" in measure.comparison(data, {"1": 0.5, "2": 0.2, "4+": 0.1})
    disagree = measure.comparison(data, {"1": -0.5, "2": 0.0, "4+": -0.04})
    assert "They disagree" in disagree and "seldom trained on" in disagree


def test_the_ordering_figure_refuses_a_parallelism_it_does_not_offer():
    with pytest.raises(gr.Error, match="parallelism must be one of"):
        measure.measure_orderings("2x")
