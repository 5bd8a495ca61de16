"""The figure of the SGLD calibration: every grid point's verdict, the configured setting and the
suggestion (the table of :func:`losskernel.readings.calibration.classify`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from losskernel.plotting import save_figure
from losskernel.readings.calibration import (
    CONTROL,
    FAIL,
    PASS,
    SETTING,
    is_configured,
    short_reason,
    suggest,
)

STATUS_COLOURS = {PASS: "#a6dba0", FAIL: "#f4a582", CONTROL: "#d9d9d9"}


def plot_calibration(table: pd.DataFrame, configured: Mapping[str, float],
                     path: str | os.PathLike, record: Mapping[str, str | int] | None = None,
                     ) -> None:
    """Draw :func:`calibration_figure` and save it to ``path`` with the provenance ``record``
    (:func:`losskernel.plotting.save_figure`)."""
    save_figure(calibration_figure(table, configured), path, record or {})


def calibration_figure(table: pd.DataFrame, configured: Mapping[str, float]) -> Figure:
    """One panel per localization γ: rows nβ (the nβ = 0 controls at the bottom), columns ε
    (as categories, ascending), each cell coloured by status and labelled with the failed check
    or, for a pass, its median bulk ESS. The ``configured`` setting (``step_size``, ``nbeta``,
    ``localization``) is outlined and the suggestion starred; the title counts the passes."""
    step_sizes = sorted(table["step_size"].unique())
    nbetas = sorted(table["nbeta"].unique())
    localizations = sorted(table["localization"].unique())
    suggestion = suggest(table)
    width, height = 1.0 + 0.95 * len(step_sizes), 1.3 + 0.55 * len(nbetas)
    figure, axes = plt.subplots(1, len(localizations), figsize=(width * len(localizations),
                                                                height), squeeze=False)
    for axis, localization in zip(axes[0], localizations, strict=True):
        panel = table[table["localization"] == localization]
        _draw_panel(axis, panel, step_sizes, nbetas, configured, suggestion)
        axis.set_title(f"γ = {localization:g}", fontsize=9)
    axes[0][0].set_ylabel("nβ")
    points = int((table["status"] != CONTROL).sum())
    passes = int((table["status"] == PASS).sum())
    verdict = ("no setting passes" if suggestion is None else
               "suggested: " + ", ".join(f"{name} {suggestion[key]:g}" for key, name in
                                         zip(SETTING, ("ε", "nβ", "γ"), strict=True)))
    on_grid = is_configured(table, configured).any()
    figure.suptitle(f"SGLD calibration: {passes} of {points} settings pass ({verdict})"
                    + ("" if on_grid else "; the configured setting is not on the grid"),
                    fontsize=10)
    figure.legend(handles=_legend_handles(), loc="lower center", ncols=5, fontsize=7,
                  frameon=False)
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    return figure


def _draw_panel(axis, panel: pd.DataFrame, step_sizes: Sequence[float],
                nbetas: Sequence[float], configured: Mapping[str, float],
                suggestion: pd.Series | None) -> None:
    """The cells of one γ: colour, label, the configured outline and the suggestion's star."""
    configured_rows = is_configured(panel, configured)
    for index, row in panel.iterrows():
        column, line = step_sizes.index(row["step_size"]), nbetas.index(row["nbeta"])
        axis.add_patch(Rectangle((column - 0.5, line - 0.5), 1, 1, edgecolor="w", lw=1.5,
                                 facecolor=STATUS_COLOURS.get(row["status"], "w")))
        label = short_reason(row["status"], row["reason"])
        if label == PASS:  # a pass shows how well it mixes, the basis of the suggestion
            label = f"{row['median_ess_bulk']:.0f}"
        axis.text(column, line, label, ha="center", va="center", fontsize=7)
        if configured_rows[index]:
            axis.add_patch(Rectangle((column - 0.46, line - 0.46), 0.92, 0.92, fill=False,
                                     edgecolor="k", lw=2.0))
        if suggestion is not None and index == suggestion.name:
            axis.plot(column + 0.32, line + 0.26, marker="*", ms=11, color="gold",
                      markeredgecolor="k", markeredgewidth=0.6)
    axis.set_xlim(-0.5, len(step_sizes) - 0.5)
    axis.set_ylim(-0.5, len(nbetas) - 0.5)
    axis.set_xticks(range(len(step_sizes)), [f"{value:g}" for value in step_sizes])
    axis.set_yticks(range(len(nbetas)),
                    [f"{value:g}" if value else "0 (control)" for value in nbetas])
    axis.set_xlabel("step size ε")
    axis.tick_params(length=0, labelsize=8)
    for spine in axis.spines.values():
        spine.set_visible(False)


def _legend_handles() -> list:
    """The statuses' colours, the configured outline and the suggestion's star."""
    return [
        Patch(facecolor=STATUS_COLOURS[PASS], label="pass (median bulk ESS)"),
        Patch(facecolor=STATUS_COLOURS[FAIL], label="fail (first failed check)"),
        Patch(facecolor=STATUS_COLOURS[CONTROL], label="nβ = 0 control"),
        Patch(fill=False, edgecolor="k", lw=2.0, label="configured"),
        Line2D([], [], marker="*", ls="", ms=11, color="gold", markeredgecolor="k",
               markeredgewidth=0.6, label="suggested"),
    ]
