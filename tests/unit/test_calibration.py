"""The calibration of the SGLD settings: bounds carried to short chains, each failure's reason
on a planted grid, the suggestion, the summary of a synthetic run, and the figure."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.colors import to_hex
from PIL import Image

from losskernel.plotting.calibration import calibration_figure, plot_calibration
from losskernel.readings.calibration import (
    SUMMARY_FIELDS,
    Bounds,
    bounds_for_draws,
    classify,
    control_z,
    point_summary,
    suggest,
)

BOUNDS = Bounds(max_rhat=1.05, min_ess=100, max_stationarity_z=3, min_control_z=3)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def point(step_size: float, nbeta: float, **fields: float) -> dict[str, float]:
    """A grid point's row that passes every check against a control of mean loss 2.0."""
    row = {"step_size": step_size, "nbeta": nbeta, "localization": 100.0, "finite": 1.0,
           "mean_loss": 2.0 if nbeta == 0 else 1.5, "mean_loss_se": 0.01, "loss_rise": 0.1,
           "max_abs_stationarity_z": 1.0, "worst_rhat": 1.01, "median_ess_bulk": 500.0,
           "median_ess_tail": 400.0, "mean_distance": 0.5, "diverged": 0.0}
    return {**row, **fields}


def planted_grid() -> pd.DataFrame:
    """Three step sizes × nβ ∈ {0, 1, 10, 100}: one failure of each kind, and passes."""
    return pd.DataFrame([
        point(1e-4, 0), point(1e-4, 1, median_ess_bulk=300.0),
        point(1e-4, 10, mean_loss=1.6),                      # above nβ = 1's 1.5
        point(1e-4, 100, diverged=1.0, worst_rhat=2.0),      # diverged wins over R-hat
        point(1e-3, 0), point(1e-3, 1, mean_loss=1.99),      # z = 0.707 from its control
        point(1e-3, 10, mean_loss=2.1),                      # above the control's 2.0
        point(1e-3, 100, max_abs_stationarity_z=5.0, worst_rhat=1.2),
        point(1e-2, 0), point(1e-2, 1, worst_rhat=1.2),
        point(1e-2, 10, median_ess_bulk=50.0), point(1e-2, 100, median_ess_bulk=900.0,
                                                     mean_loss=1.2),
    ])


def test_bounds_for_draws_scale_as_one_over_draws():
    max_rhat, min_ess = bounds_for_draws(1.01, 400, main_draws=1000, calibration_draws=200)
    assert max_rhat == pytest.approx(math.sqrt(1 + (1.01**2 - 1) * 5))
    assert max_rhat == pytest.approx(1.0490, abs=5e-5)  # sqrt(1.1005)
    assert min_ess == pytest.approx(80)
    assert bounds_for_draws(1.01, 400, 1000, 1000) == pytest.approx((1.01, 400))
    with pytest.raises(ValueError, match="calibration_draws=0"):
        bounds_for_draws(1.01, 400, 1000, 0)


def test_classify_gives_each_failure_its_reason():
    table = classify(planted_grid(), BOUNDS)
    verdicts = {(row.step_size, row.nbeta): (row.status, row.reason)
                for row in table.itertuples()}
    assert verdicts == {
        (1e-4, 0): ("control", ""), (1e-3, 0): ("control", ""), (1e-2, 0): ("control", ""),
        (1e-4, 1): ("pass", ""),
        (1e-4, 10): ("fail", "overshoot: loss above nβ=1's (by 0.1)"),
        (1e-4, 100): ("fail", "diverged"),
        (1e-3, 1): ("fail", "indistinguishable from the nβ = 0 control (z = 0.707 < 3)"),
        (1e-3, 10): ("fail", "overshoot: loss above the control's (by 0.1)"),
        (1e-3, 100): ("fail", "loss not stationary (|z| = 5 > 3)"),
        (1e-2, 1): ("fail", "R-hat 1.2 > 1.05"),
        (1e-2, 10): ("fail", "ESS 50 < 100 (bulk)"),
        (1e-2, 100): ("pass", ""),
    }


def test_classify_keeps_the_table_and_its_index():
    grid = planted_grid()
    grid.index = grid.index + 10
    before = grid.copy()
    table = classify(grid, BOUNDS)
    pd.testing.assert_frame_equal(grid, before)
    pd.testing.assert_frame_equal(table.drop(columns=["status", "reason"]), grid)


def test_classify_checks_tail_ess_nan_and_carried_bounds():
    bounds = Bounds(*bounds_for_draws(1.01, 400, 1000, 200), max_stationarity_z=3,
                    min_control_z=3)
    grid = pd.DataFrame([point(1e-3, 0), point(1e-3, 1, median_ess_tail=70.0),
                         point(1e-3, 10, worst_rhat=1.0523, mean_loss=1.4),
                         point(1e-3, 100, worst_rhat=math.nan, mean_loss=1.3)])
    assert list(classify(grid, bounds)["reason"]) == [
        "", "ESS 70 < 80 (tail)", "R-hat 1.0523 > 1.049", "R-hat nan > 1.049"]


def test_a_control_that_diverged_leaves_its_points_failing():
    grid = pd.DataFrame([point(1e-3, 0, mean_loss=math.nan, diverged=1.0), point(1e-3, 1)])
    table = classify(grid, BOUNDS)
    assert list(table["status"]) == ["control", "fail"]
    assert list(table["reason"]) == [
        "diverged", "indistinguishable from the nβ = 0 control (z = nan < 3)"]


def test_classify_a_grid_whose_every_sampler_raised():
    grid = pd.DataFrame([{**point(1e-3, nbeta), "finite": 0.0, "diverged": 1.0}
                         for nbeta in (0, 1)])[["step_size", "nbeta", "localization",
                                                 "finite", "diverged"]]
    table = classify(grid, BOUNDS)
    assert list(table["reason"]) == ["diverged", "diverged"]
    assert suggest(table) is None


def test_classify_needs_one_control_per_step_size_and_localization():
    with pytest.raises(ValueError, match=r"one nβ = 0 control at step_size 0\.001"):
        classify(pd.DataFrame([point(1e-3, 1)]), BOUNDS)


def test_control_z_counts_standard_errors_below_the_control():
    assert control_z(2.0, 0.03, 1.5, 0.04) == pytest.approx(10.0)
    assert control_z(2.0, 0.0, 2.5, 0.0) == -math.inf


def test_suggest_picks_the_largest_bulk_ess_among_passes():
    table = classify(planted_grid(), BOUNDS)
    suggestion = suggest(table)
    assert (suggestion["step_size"], suggestion["nbeta"]) == (1e-2, 100)
    assert table.loc[suggestion.name, "median_ess_bulk"] == 900.0
    tied = table.assign(median_ess_bulk=300.0)
    assert suggest(tied)["step_size"] == 1e-4
    assert suggest(table.assign(status="fail")) is None


def synthetic_traces(rng, num_chains=4, num_draws=200, num_inputs=5) -> xr.Dataset:
    """IID losses 0.1 above the loss at w*, a stationary minibatch loss around 0.6."""
    init_loss = rng.uniform(0.3, 0.7, num_inputs)
    loss = init_loss + 0.1 + rng.normal(scale=0.05, size=(num_chains, num_draws, num_inputs))
    batch_loss = 0.6 + rng.normal(scale=0.05, size=(num_chains, num_draws))
    return xr.Dataset(
        {"loss": (("chain", "draw", "obs_id"), loss.astype(np.float32)),
         "init_loss": (("obs_id",), init_loss.astype(np.float32)),
         "batch_loss": (("chain", "draw"), batch_loss.astype(np.float32)),
         "distance": (("chain", "draw"), np.full((num_chains, num_draws), 0.25, np.float32))},
        coords={"chain": np.arange(num_chains), "draw": np.arange(num_draws),
                "obs_id": [f"z{i}" for i in range(num_inputs)]})


def test_point_summary_of_a_stationary_run(rng):
    summary = point_summary(synthetic_traces(rng), chance_loss=math.log(10))
    assert list(summary) == list(SUMMARY_FIELDS)
    assert summary["finite"] == 1.0 and summary["diverged"] == 0.0
    assert summary["loss_rise"] == pytest.approx(0.1, abs=0.01)
    assert summary["mean_loss"] == pytest.approx(0.6, abs=0.01)
    # IID draws: the standard error of the mean is sd / sqrt(chains × draws) = 0.05 / sqrt(800).
    assert summary["mean_loss_se"] == pytest.approx(0.05 / math.sqrt(800), rel=0.3)
    assert summary["mean_distance"] == pytest.approx(0.25)
    assert summary["worst_rhat"] < 1.05
    assert summary["median_ess_bulk"] > 400 and summary["median_ess_tail"] > 200
    assert summary["max_abs_stationarity_z"] < 5


def test_point_summary_skips_a_constant_input(rng):
    traces = synthetic_traces(rng)
    traces["loss"][:, :, 0] = 0.5
    summary = point_summary(traces, chance_loss=math.log(10))
    assert summary["worst_rhat"] < 1.05


def test_point_summary_marks_divergence(rng):
    traces = synthetic_traces(rng)
    assert point_summary(traces, chance_loss=0.5)["diverged"] == 1.0
    traces["loss"][1, 7, 2] = np.nan
    summary = point_summary(traces, chance_loss=math.log(10))
    assert (summary["finite"], summary["diverged"]) == (0.0, 1.0)
    assert math.isnan(summary["worst_rhat"])


def test_calibration_figure_colours_labels_outlines_and_stars_each_cell(tmp_path):
    grid = planted_grid()
    table = classify(pd.concat([grid, grid.assign(localization=1000.0)], ignore_index=True),
                     BOUNDS)
    configured = {"step_size": 1e-3, "nbeta": 10, "localization": 100.0}
    figure = calibration_figure(table, configured)
    # 2 passes of 9 points per γ; the suggestion is the first of the two ESS-900 passes
    assert figure.get_suptitle() == (
        "SGLD calibration: 4 of 18 settings pass (suggested: ε 0.01, nβ 100, γ 100)")
    assert [axis.get_title() for axis in figure.axes] == ["γ = 100", "γ = 1000"]
    # cells in grid order: columns ε = 1e-4, 1e-3, 1e-2; rows nβ = 0, 1, 10, 100
    labels = ["control", "300", "overshoot", "diverged",
              "control", "≈ control", "overshoot", "stationarity",
              "control", "R-hat", "ESS", "900"]
    colours = {"control": "#d9d9d9", "300": "#a6dba0", "900": "#a6dba0"}
    for axis, outlined in zip(figure.axes, [True, False], strict=True):
        cells = [patch for patch in axis.patches if patch.get_fill()]
        assert [patch.get_xy() for patch in cells] == [
            (column - 0.5, line - 0.5) for column in range(3) for line in range(4)]
        assert [to_hex(patch.get_facecolor()) for patch in cells] == [
            colours.get(label, "#f4a582") for label in labels]
        assert [text.get_text() for text in axis.texts] == labels
        outlines = [patch.get_xy() for patch in axis.patches if not patch.get_fill()]
        assert outlines == ([(1 - 0.46, 2 - 0.46)] if outlined else [])  # ε 1e-3, nβ 10
        stars = [line.get_xydata().tolist() for line in axis.lines]
        assert stars == ([[[2.32, 3.26]]] if outlined else [])  # ε 1e-2, nβ 100, γ 100
    nothing = calibration_figure(table.assign(status="fail"), {"step_size": 5.0})
    assert nothing.get_suptitle() == ("SGLD calibration: 0 of 24 settings pass (no setting "
                                      "passes); the configured setting is not on the grid")
    assert not any(axis.lines for axis in nothing.axes)
    path = tmp_path / "figures" / "calibration.png"
    plot_calibration(table, configured, path, {"rule": "calibrate_experiment"})
    with Image.open(path) as image:
        assert image.text["losskernel:rule"] == "calibrate_experiment"  # the record, in the PNG
