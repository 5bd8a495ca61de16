"""The figure of a sweep: each panel's metrics against the swept size, on a log axis."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

COLUMNS_PER_ROW = 3


def sweep_figure(table: pd.DataFrame) -> Figure:
    """One panel per ``panel`` of a sweep table (``losskernel.readings.sweep.sweep_table``):
    each of its metrics against ``x`` (log scale), one line per metric, with error bars of
    one standard deviation across trained models where a size has two or more, else across
    SGLD seeds (a hollow marker). A tick shows the size and, when the sweep has one, the
    ``label`` metric (test accuracy). A metric whose diagnostics failed is drawn dashed. A
    legend label (the metric without the words its panel's metrics share) keeps its colour in
    every panel."""
    sweep = str(table["sweep"].iloc[0])
    panels = list(dict.fromkeys(table["panel"]))
    rows = math.ceil(len(panels) / COLUMNS_PER_ROW)
    columns = min(len(panels), COLUMNS_PER_ROW)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows),
                                squeeze=False, constrained_layout=True)
    sizes = table.drop_duplicates("experiment").sort_values("x")
    ticks = sizes["x"].to_numpy()
    tick_labels = [_size_label(row.x, row.label, row.label_metric)
                   for row in sizes.itertuples()]
    label_metric = str(sizes["label_metric"].fillna("").iloc[0])
    x_label = sizes["x_metric"].iloc[0] + (f" / {label_metric}" if label_metric else "")
    colours: dict[str, str] = {}  # one colour per legend label across panels ("pixels" alike)
    for axis, panel in zip(axes.ravel(), panels, strict=False):
        rows_of_panel = table[table["panel"] == panel]
        metrics = list(dict.fromkeys(rows_of_panel["metric"]))
        prefix = _shared_words(metrics) if len(metrics) > 1 else ""
        for metric in metrics:
            line = rows_of_panel[rows_of_panel["metric"] == metric].sort_values("x")
            across_models = line["models"].to_numpy() >= 2
            error = np.where(across_models, line["model_spread"], line["seed_spread"])
            passed = line["diagnostics_passed"].astype(str).eq("True").all()
            label = metric[len(prefix):] or metric
            colour = colours.setdefault(label, f"C{len(colours) % 10}")
            axis.errorbar(line["x"], line["value"], yerr=np.nan_to_num(error), marker="o",
                          capsize=3, ls="-" if passed else "--", color=colour, label=label)
            axis.scatter(line["x"][~across_models], line["value"][~across_models],
                         s=40, facecolor="white", edgecolor=colour, zorder=3)
        axis.set_xscale("log")
        axis.set_xticks(ticks, tick_labels, fontsize=7)
        axis.set_xlabel(x_label, fontsize=8)
        axis.minorticks_off()
        axis.set_title(panel, fontsize=10)
        axis.legend(fontsize=7, title=prefix.rstrip("_") or None, title_fontsize=7)
        axis.grid(alpha=0.3)
    for axis in axes.ravel()[len(panels):]:
        axis.set_visible(False)
    figure.suptitle(f"sweep {sweep}: against {sizes['x_metric'].iloc[0]} (error bars: SD "
                    f"across models, filled; across SGLD seeds, hollow)", fontsize=10)
    return figure


def _shared_words(metrics: list[str]) -> str:
    """The leading words (``_``-separated) every metric name shares, with the final ``_``:
    ``depth_lift_`` for ``depth_lift_R`` and ``depth_lift_K``."""
    shared = []
    for words in zip(*(metric.split("_") for metric in metrics), strict=False):
        if len(set(words)) > 1:
            break
        shared.append(words[0])
    return "".join(f"{word}_" for word in shared)


def _size_label(x: float, label: float, label_metric: str) -> str:
    size = f"{x / 1e6:.3g}M" if x >= 1e6 else f"{x / 1e3:.3g}k" if x >= 1e3 else f"{x:g}"
    if not label_metric or not np.isfinite(label):
        return size
    shown = f"{label:.1%}" if "accuracy" in label_metric else f"{label:.3g}"
    return f"{size}\n{shown}"
