"""The figure of an experiment's sampler diagnostics: how far its draws can be trusted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from losskernel.plotting.basic import GROUP_COLOURS


def diagnostics_figure(experiment: str, per_input: Mapping[str, pd.DataFrame],
                       runs: pd.DataFrame, bounds: Mapping[str, Any]) -> Figure:
    """Six panels. Top: the distribution over kernel inputs of the main runs' split R-hat,
    bulk ESS, tail ESS (each with its bound) and between-chain share of K(z,z). Bottom: every
    run of the experiment (main, γ sweep, trajectory) by its worst R-hat and its median bulk
    ESS, the Monte-Carlo error of R beside its typical size in the title.

    ``per_input`` maps each main run to its per-input table (``rhat, ess_bulk, ess_tail,
    between_chain_share``); ``runs`` has a row per run (``run`` and the run summary);
    ``bounds`` the ``max_rhat`` and ``min_ess`` of the config."""
    figure = plt.figure(figsize=(14, 7.5))
    grid = figure.add_gridspec(2, 4)
    panels = [("rhat", "split R-hat", bounds["max_rhat"], False),
              ("ess_bulk", "bulk ESS", bounds["min_ess"], True),
              ("ess_tail", "tail ESS", bounds["min_ess"], True),
              ("between_chain_share", "between-chain share of K(z,z)", None, False)]
    for column, (name, label, bound, log) in enumerate(panels):
        axis = figure.add_subplot(grid[0, column])
        values = [table[name].to_numpy(dtype=float) for table in per_input.values()]
        finite = np.concatenate([v[np.isfinite(v)] for v in values])
        edges = (np.geomspace(max(finite.min(), 1.0), finite.max() * 1.01, 30) if log
                 else np.linspace(finite.min(), finite.max() + 1e-9, 30))
        for colour, (run, value) in zip(GROUP_COLOURS * 3, zip(per_input, values, strict=True),
                                        strict=False):
            axis.hist(value[np.isfinite(value)], bins=edges, histtype="step", color=colour,
                      label=run)
        if bound is not None:
            axis.axvline(bound, color="k", linestyle="--", linewidth=1, label="bound")
        if log:
            axis.set_xscale("log")
            axis.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap
        axis.set_xlabel(label)
        axis.set_ylabel("kernel inputs" if column == 0 else "")
        axis.legend(fontsize=7)
    _run_panel(figure.add_subplot(grid[1, :2]), runs, "worst_rhat", "worst R-hat of the run",
               bounds["max_rhat"])
    _run_panel(figure.add_subplot(grid[1, 2:]), runs, "median_ess_bulk",
               "median bulk ESS of the run", bounds["min_ess"])
    main = runs[runs["run"].isin(list(per_input))]
    figure.suptitle(
        f"{experiment}: sampler diagnostics (main runs: Monte-Carlo error of R, median "
        f"{main['median_correlation_se'].median():.3f}, against median |R| "
        f"{main['median_abs_correlation'].median():.3f}; max |Geweke z| of the minibatch loss "
        f"{runs['max_abs_stationarity_z'].max():.2f})", fontsize=10)
    figure.tight_layout()
    return figure


def _run_panel(axis, runs: pd.DataFrame, column: str, label: str, bound: float) -> None:
    """Every run's value of ``column`` against the bound, runs in order."""
    positions = np.arange(len(runs))
    outside = (runs[column] > bound) if column == "worst_rhat" else (runs[column] < bound)
    axis.scatter(positions, runs[column], c=np.where(outside, "#d62728", "#1f77b4"), s=18)
    axis.axhline(bound, color="k", linestyle="--", linewidth=1)
    axis.set_xticks(positions, runs["run"], rotation=60, fontsize=7)
    axis.set_ylabel(label)
    if column != "worst_rhat":
        axis.set_yscale("log")
