"""The calibration of the SGLD settings: short chains over a grid of ε × nβ × γ, judged.

Each grid point's short run is summarised by :func:`point_summary`; :func:`classify` marks
every point of the grid ``pass`` or ``fail`` with the first reason it fails, in the order

1. ``diverged``: a loss is not finite, or the mean minibatch loss is above chance;
2. ``loss not stationary (|z| = … > …)``: the largest per-chain Geweke ``|z|`` of the
   minibatch loss;
3. ``R-hat … > …``: the worst split R-hat over the kernel inputs' losses;
4. ``ESS … < … (bulk)`` / ``(tail)``: the median bulk (then tail) ESS over the inputs;
5. ``overshoot: loss above the control's (by …)`` / ``overshoot: loss above nβ=<n>'s (by …)``:
   a larger nβ weighs the likelihood more and must pull the loss down, not up;
6. ``indistinguishable from the nβ = 0 control (z = … < …)``: the likelihood must pull the loss
   below the control's by several standard errors.

The points with nβ = 0 are the controls (pure prior and noise, no likelihood), one per ε × γ,
marked ``control``. :func:`suggest` picks the passing point with the largest bulk ESS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from losskernel.readings.diagnostics import (
    ess_bulk,
    ess_tail,
    mean_standard_error,
    split_rhat,
    stationarity_z,
)

SETTING = ("step_size", "nbeta", "localization")
"""The columns that name a grid point."""

SUMMARY_FIELDS = ("finite", "mean_loss", "mean_loss_se", "loss_rise", "max_abs_stationarity_z",
                  "worst_rhat", "median_ess_bulk", "median_ess_tail", "mean_distance",
                  "diverged")
"""The fields of :func:`point_summary`, in its order."""

REASON_LABELS = (("diverged", "diverged"), ("loss not stationary", "stationarity"),
                 ("R-hat", "R-hat"), ("ESS", "ESS"), ("overshoot", "overshoot"),
                 ("indistinguishable", "≈ control"))
"""``(start of a reason, short label)`` for every reason :func:`classify` gives."""

PASS, FAIL, CONTROL = "pass", "fail", "control"


def point_summary(traces: xr.Dataset, chance_loss: float) -> dict[str, float]:
    """Summary of one grid point's short run, the fields of ``SUMMARY_FIELDS``.

    With ``loss (chain, draw, obs_id)``, ``batch_loss (chain, draw)``, ``init_loss (obs_id)``
    and ``distance (chain, draw)`` of ``traces``:

    - ``finite``: 1.0 if every loss (per-input, minibatch, at w*) is finite, else 0.0;
    - ``mean_loss`` = mean over chains and draws of ``batch_loss``, with ``mean_loss_se`` its
      Monte-Carlo standard error (autocorrelation within each chain accounted for);
    - ``loss_rise`` = mean over chains, draws and inputs of ``loss − init_loss``;
    - ``max_abs_stationarity_z`` = max over chains of ``|Geweke z|`` of ``batch_loss``;
    - ``worst_rhat`` = max over inputs of split R-hat of ``loss``; ``median_ess_bulk`` and
      ``median_ess_tail`` = the median over inputs of their bulk and tail ESS;
    - ``mean_distance`` = mean of ``distance`` = ``||w − w*||``;
    - ``diverged`` = 1.0 if not finite or ``mean_loss > chance_loss`` (the loss of guessing
      uniformly, log(number of classes)), else 0.0.

    As in the main runs' diagnostics, statistics over inputs skip NaN (a constant input has no
    R-hat). A run that is not finite has every other field NaN (its diagnostics mean nothing).
    """
    loss = traces["loss"].transpose("chain", "draw", "obs_id").values.astype(np.float64)
    batch_loss = traces["batch_loss"].transpose("chain", "draw").values.astype(np.float64)
    init_loss = traces["init_loss"].values.astype(np.float64)
    finite = bool(np.isfinite(loss).all() and np.isfinite(batch_loss).all()
                  and np.isfinite(init_loss).all())
    if not finite:
        return {**dict.fromkeys(SUMMARY_FIELDS, math.nan), "finite": 0.0, "diverged": 1.0}
    mean_loss = float(batch_loss.mean())
    return {
        "finite": 1.0,
        "mean_loss": mean_loss,
        "mean_loss_se": float(mean_standard_error(batch_loss)),
        "loss_rise": float((loss - init_loss).mean()),
        "max_abs_stationarity_z": _skipping_nan(np.max, np.abs(stationarity_z(batch_loss))),
        "worst_rhat": _skipping_nan(np.max, split_rhat(loss)),
        "median_ess_bulk": _skipping_nan(np.median, ess_bulk(loss)),
        "median_ess_tail": _skipping_nan(np.median, ess_tail(loss)),
        "mean_distance": float(traces["distance"].values.astype(np.float64).mean()),
        "diverged": float(mean_loss > chance_loss),
    }


def _skipping_nan(reduce: Callable[[np.ndarray], float], values: np.ndarray) -> float:
    """``reduce`` over the values that are not NaN; NaN if there are none."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    return float(reduce(values)) if values.size else math.nan


@dataclass(frozen=True)
class Bounds:
    """What a grid point must meet to pass: ``worst_rhat <= max_rhat``, both median ESS
    ``>= min_ess``, ``max_abs_stationarity_z <= max_stationarity_z``, and a mean loss at least
    ``min_control_z`` standard errors below its nβ = 0 control's."""

    max_rhat: float
    min_ess: float
    max_stationarity_z: float
    min_control_z: float


def bounds_for_draws(max_rhat: float, min_ess: float, main_draws: int,
                     calibration_draws: int) -> tuple[float, float]:
    """The main runs' R-hat and ESS bounds carried over to the calibration's shorter chains.

    A chain of n draws of a stationary process has ESS ∝ n, and R̂² − 1 ≈ B/(nW) ∝ 1/n (the
    between-chain variance of the chain means shrinks as 1/n). So a chain that would meet the
    bounds after ``main_draws`` = n meets, after ``calibration_draws`` = m,

        max_rhat' = sqrt(1 + (max_rhat² − 1) · n / m),    min_ess' = min_ess · m / n;

    e.g. R̂ ≤ 1.01 over 1000 draws is R̂ ≤ 1.049 over 200, ESS ≥ 400 is ESS ≥ 80. Holding the
    short chains to the main runs' bounds instead would fail every setting.
    Returns ``(max_rhat', min_ess')``.
    """
    if main_draws <= 0 or calibration_draws <= 0:
        raise ValueError(f"draw counts must be > 0, got main_draws={main_draws}, "
                         f"calibration_draws={calibration_draws} (config: sampling.num_draws, "
                         f"analysis.calibration.num_draws)")
    if max_rhat < 1:
        raise ValueError(f"max_rhat must be >= 1, got {max_rhat} (config: "
                         f"analysis.diagnostics.max_rhat)")
    ratio = main_draws / calibration_draws
    return math.sqrt(1 + (max_rhat**2 - 1) * ratio), min_ess / ratio


def classify(table: pd.DataFrame, bounds: Bounds) -> pd.DataFrame:
    """``table`` with ``status`` (pass / fail / control) and ``reason`` (the first failure,
    in the order of the module docstring; empty for a pass or a finite control).

    ``table`` has a row per grid point: ``step_size``, ``nbeta``, ``localization`` and the
    fields of :func:`point_summary`. The rows with nβ = 0 are the controls, exactly one per
    step size × localization. A point is compared with the control and with the next smaller
    nβ at its ε and γ; with z = (m_c − m)/sqrt(se_c² + se²) of the mean losses m and their
    standard errors se, it fails when z < ``bounds.min_control_z`` (a control whose mean loss
    is not finite leaves z undefined, and the point fails). Diagnostics that are NaN fail.
    """
    frame = _checked_grid(table)
    status = np.full(len(frame), PASS, dtype=object)
    reason = np.full(len(frame), "", dtype=object)
    for (step_size, localization), group in frame.groupby(["step_size", "localization"]):
        controls = group[group["nbeta"] == 0]
        if len(controls) != 1:
            raise ValueError(f"the calibration grid needs one nβ = 0 control at step_size "
                             f"{step_size:g}, localization {localization:g}; it has "
                             f"{len(controls)}")
        control = controls.iloc[0]
        status[control.name] = CONTROL
        reason[control.name] = "" if np.isfinite(control["mean_loss"]) else "diverged"
        smaller = None
        for position, row in group[group["nbeta"] > 0].sort_values("nbeta").iterrows():
            reason[position] = _first_failure(row, control, smaller, bounds)
            status[position] = FAIL if reason[position] else PASS
            smaller = row
    result = table.copy()
    result["status"], result["reason"] = status, reason
    return result


def _checked_grid(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` indexed by position, after checking it is a grid; summary fields it lacks are
    NaN (a grid whose every sampler raised has only ``finite`` and ``diverged``)."""
    needed = [*SETTING, "diverged"]
    missing = [column for column in needed if column not in table]
    if missing:
        raise ValueError(f"calibration table lacks columns {missing}; each row needs "
                         f"{', '.join(needed)} and the fields of point_summary")
    if table[list(SETTING)].isna().any().any():
        raise ValueError(f"calibration table has a row without a setting ({', '.join(SETTING)})")
    if (table["nbeta"] < 0).any():
        raise ValueError(f"nbeta must be >= 0, got {sorted(table['nbeta'].unique())}")
    if table.duplicated(list(SETTING)).any():
        raise ValueError("calibration table repeats a setting (step_size, nbeta, localization)")
    absent = [field for field in SUMMARY_FIELDS if field not in table]
    return table.reset_index(drop=True).reindex(columns=[*table.columns, *absent])


def _first_failure(row: pd.Series, control: pd.Series, smaller: pd.Series | None,
                   bounds: Bounds) -> str:
    """The first check ``row`` fails, as a reason with its numbers; "" if it passes.

    Comparisons are written ``not value <= bound`` so that a NaN diagnostic fails.
    """
    if not row["diverged"] == 0:
        return "diverged"
    z = row["max_abs_stationarity_z"]
    if not z <= bounds.max_stationarity_z:
        return f"loss not stationary (|z| = {_number(z)} > {_number(bounds.max_stationarity_z)})"
    if not row["worst_rhat"] <= bounds.max_rhat:
        return f"R-hat {_rhat(row['worst_rhat'])} > {_rhat(bounds.max_rhat)}"
    for kind in ("bulk", "tail"):
        ess = row[f"median_ess_{kind}"]
        if not ess >= bounds.min_ess:
            return f"ESS {_number(ess)} < {_number(bounds.min_ess)} ({kind})"
    mean = row["mean_loss"]
    if mean > control["mean_loss"]:
        return f"overshoot: loss above the control's (by {_number(mean - control['mean_loss'])})"
    if smaller is not None and mean > smaller["mean_loss"]:
        return (f"overshoot: loss above nβ={smaller['nbeta']:g}'s "
                f"(by {_number(mean - smaller['mean_loss'])})")
    z = control_z(control["mean_loss"], control["mean_loss_se"], mean, row["mean_loss_se"])
    if not z >= bounds.min_control_z:
        return (f"indistinguishable from the nβ = 0 control (z = {_number(z)} < "
                f"{_number(bounds.min_control_z)})")
    return ""


def control_z(control_mean: float, control_se: float, mean: float, se: float) -> float:
    """z = (control_mean − mean) / sqrt(control_se² + se²): how many standard errors the
    likelihood pulls the mean loss below the control's (±inf when both errors are 0)."""
    difference = float(control_mean) - float(mean)
    scale = math.hypot(float(control_se), float(se))
    if scale == 0:
        return math.copysign(math.inf, difference) if difference else 0.0
    return difference / scale


def suggest(table: pd.DataFrame) -> pd.Series | None:
    """The passing row of a classified ``table`` with the largest ``median_ess_bulk`` (ties:
    the smaller step size); None when no point passes. The row keeps its index as ``name``."""
    passing = table[table["status"] == PASS]
    if passing.empty:
        return None
    ranked = passing.sort_values(["median_ess_bulk", "step_size"], ascending=[False, True],
                                 kind="stable")
    return ranked.iloc[0]


def is_configured(table: pd.DataFrame, configured: Mapping[str, float]) -> pd.Series:
    """Whether each row of ``table`` is the ``configured`` setting (``step_size``, ``nbeta``,
    ``localization``, compared with ``np.isclose``); False everywhere if a key is missing."""
    if not all(key in configured for key in SETTING):
        return pd.Series(False, index=table.index)
    matches = [np.isclose(table[key], configured[key]) for key in SETTING]
    return pd.Series(np.all(matches, axis=0), index=table.index)


def short_reason(status: str, reason: str) -> str:
    """A short label of a classified point's verdict: the failed check (``REASON_LABELS``),
    ``control``, or ``pass``."""
    if status == CONTROL:
        return CONTROL
    if status == PASS:
        return PASS
    for start, label in REASON_LABELS:
        if str(reason).startswith(start):
            return label
    return FAIL


def _number(value: float) -> str:
    """3 significant digits, without an exponent below 10⁶ (ESS 1230, not 1.23e+03)."""
    return f"{float(f'{value:.3g}'):g}" if np.isfinite(value) else f"{value}"


def _rhat(value: float) -> str:
    """R-hat with 3 significant digits of R-hat − 1: "1.052 > 1.049", not "1.05 > 1.05" (the
    bounds of :func:`bounds_for_draws` differ in the third decimal)."""
    excess = value - 1
    if not (np.isfinite(value) and excess > 0):
        return _number(value)
    decimals = math.floor(-math.log10(excess)) + 3
    return f"{value:.{max(3, 1 + decimals)}g}"
