"""Sweeps: the model reading a sweep plots against, the sweep's table and its figure."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from losskernel.readings.checks import model_metrics
from losskernel.readings.summary import HEADLINE_COLUMNS
from losskernel.readings.sweep import SWEEP_COLUMNS, sweep_table


def headline(rows: dict[str, tuple[float, float, int, float]]) -> pd.DataFrame:
    """Headline rows ``metric -> (value, model_spread, models, seed_spread)``."""
    return pd.DataFrame([{"experiment": "e", "metric": metric, "value": value,
                          "model_spread": model_spread, "models": models,
                          "seed_spread": seed_spread, "seeds": 2, "diagnostics_passed": True,
                          "source": "s"}
                         for metric, (value, model_spread, models, seed_spread) in rows.items()],
                        columns=list(HEADLINE_COLUMNS))


def test_model_metrics_are_the_recorded_size_and_the_last_evaluation():
    history = pd.DataFrame({"step": [0, 100], "train_accuracy": [0.1, 0.9],
                            "test_accuracy": [0.1, 0.85]})
    training = json.dumps({"converged": None, "final_step": 100, "num_parameters": 1234})
    assert model_metrics(history, training) == {"num_parameters": 1234.0,
                                                "train_accuracy": 0.9, "test_accuracy": 0.85}
    # an older model without the record, a task without a test split: NaN, not an error
    found = model_metrics(history.drop(columns="test_accuracy"), None)
    assert math.isnan(found["num_parameters"]) and math.isnan(found["test_accuracy"])


def test_the_sweep_table_puts_each_size_beside_each_panel_metric():
    small = headline({"num_parameters": (1000, 0, 3, math.nan), "test_accuracy": (0.8, 0.01, 3,
                      math.nan), "lift_R": (1.2, 0.1, 3, 0.05), "lift_pixels": (2.0, 0, 3, 0)})
    large = headline({"num_parameters": (16000, 0, 1, math.nan), "test_accuracy": (0.9, math.nan,
                      1, math.nan), "lift_R": (1.5, math.nan, 1, 0.02), "lift_pixels": (2.0,
                      math.nan, 1, 0)})
    table = sweep_table("size", {"small": small, "large": large}, "num_parameters",
                        {"lift": ["lift_R", "lift_pixels"]}, "test_accuracy")
    assert list(table.columns) == list(SWEEP_COLUMNS)
    assert list(zip(table["experiment"], table["metric"], strict=True)) == [
        ("small", "lift_R"), ("small", "lift_pixels"), ("large", "lift_R"),
        ("large", "lift_pixels")]
    assert list(table["x"]) == [1000, 1000, 16000, 16000]
    assert list(table["label"]) == [0.8, 0.8, 0.9, 0.9]
    assert list(table["value"]) == [1.2, 2.0, 1.5, 2.0]
    assert list(table["models"]) == [3, 3, 1, 1]
    with pytest.raises(ValueError, match=r"sweep size: the headline of small lacks "
                                         r"\['lift_K'\]; add them to its headline_metrics"):
        sweep_table("size", {"small": small}, "num_parameters", {"lift": ["lift_K"]})


def test_the_sweep_figure_draws_a_panel_per_entry_with_a_line_per_metric():
    from losskernel.plotting.sweep import sweep_figure

    sizes = {f"e{i}": headline({"num_parameters": (1000 * 4**i, 0, 1, math.nan),
                                "test_accuracy": (0.8 + i / 100, math.nan, 1, math.nan),
                                "a_R": (i, 0.1, 3 if i in (0, 2) else 1, 0.2),
                                "a_K": (-i, 0.1, 1, 0.2), "b": (1, 0, 1, 0),
                                "c_K": (0, 0, 1, 0), "c_R": (1, 0, 1, 0)})
             for i in range(3)}
    table = sweep_table("s", sizes, "num_parameters", {"first": ["a_R", "a_K"],
                                                       "second": ["b"], "third": ["c_K", "c_R"]},
                        "test_accuracy")
    figure = sweep_figure(table)
    visible = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in visible] == ["first", "second", "third"]
    first = visible[0]
    assert [text.get_text() for text in first.get_legend().get_texts()] == ["R", "K"]
    assert first.get_legend().get_title().get_text() == "a"
    assert first.get_xscale() == "log"
    assert [label.get_text() for label in first.get_xticklabels()] == [
        "1k\n80.0%", "4k\n81.0%", "16k\n82.0%"]
    # a label keeps its colour across panels: K and R of "third" are those of "first"
    def colours(axis) -> dict[str, str]:
        return {bars.get_label(): bars.lines[0].get_color() for bars in axis.containers}

    assert colours(visible[2]) == colours(first)
    assert colours(visible[1])["b"] not in colours(first).values()
    line = first.get_lines()[0]
    assert np.allclose(line.get_xdata(), [1000, 4000, 16000])
    assert np.allclose(line.get_ydata(), [0, 1, 2])
    # error bars: across models where a size has 3 (0.1), across seeds where it has 1 (0.2)
    segments = first.containers[0].lines[2][0].get_segments()
    assert [float(segment[1][1] - segment[0][1]) / 2 for segment in segments] == pytest.approx(
        [0.1, 0.2, 0.1])
