"""Figures of the readings: one function per figure, plain arrays in, a Figure out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator
from sklearn.metrics import roc_curve

GROUP_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def plot_kernel_heatmap(kernel: np.ndarray, groups: np.ndarray, title: str = "",
                        secondary_order: np.ndarray | None = None) -> Figure:
    """The kernel with rows and columns sorted by group (then by ``secondary_order``)."""
    groups = np.asarray(groups)
    keys = (np.arange(len(groups)) if secondary_order is None else secondary_order, groups)
    order = np.lexsort(keys)
    sorted_kernel = kernel[np.ix_(order, order)]
    off_diagonal = sorted_kernel[~np.eye(len(order), dtype=bool)]
    limit = float(np.quantile(np.abs(off_diagonal), 0.99)) or 1.0
    figure, axis = plt.subplots(figsize=(5.2, 4.6))
    image = axis.imshow(sorted_kernel, cmap="RdBu_r", vmin=-limit, vmax=limit,
                        interpolation="nearest")
    boundaries = np.flatnonzero(groups[order][1:] != groups[order][:-1]) + 0.5
    for boundary in boundaries:
        axis.axhline(boundary, color="k", lw=0.6)
        axis.axvline(boundary, color="k", lw=0.6)
    names, starts = np.unique(groups[order], return_index=True)
    ends = [*starts[1:], len(order)]
    ticks = [(s + e) / 2 for s, e in zip(starts, ends, strict=True)]
    axis.set_xticks(ticks, names)
    axis.set_yticks(ticks, names)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04,
                    label="kernel value (colour clipped at the 99th percentile)")
    axis.set_title(title)
    return figure


def plot_kernel_distributions(kernel: np.ndarray, groups: np.ndarray, title: str = "") -> Figure:
    """Histograms of off-diagonal kernel values within each group and across groups, each with
    its kernel density estimate (seaborn), on common bins over the central 99.8% of all values.

    The bins are numpy's ``"auto"`` choice for that many values, at most ``MAX_BINS``: a few
    hundred values get a few dozen bins rather than a comb of empty ones. The density curve is
    cut at the values' range (R lies in [-1, 1]).
    """
    groups = np.asarray(groups)
    names = list(np.unique(groups))
    off_diagonal = ~np.eye(len(groups), dtype=bool)
    panels = [(f"within {n}", (groups[:, None] == n) & (groups[None, :] == n) & off_diagonal)
              for n in names]
    panels.append(("cross-task", groups[:, None] != groups[None, :]))
    values = [kernel[mask] for _, mask in panels]
    pooled = np.concatenate(values)
    low, high = np.quantile(pooled, [0.001, 0.999])
    bins = _common_bins(pooled[(pooled >= low) & (pooled <= high)], low, high)
    figure, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3), sharex=True,
                                sharey=True)
    for axis, (name, _), vals, colour in zip(axes, panels, values, GROUP_COLOURS, strict=False):
        shown = vals[(vals >= low) & (vals <= high)]  # as a histogram on these bins counts
        sns.histplot(x=shown, bins=bins, stat="density", kde=True, kde_kws={"cut": 0},
                     color=colour, alpha=0.55, linewidth=0, line_kws={"lw": 1.4}, ax=axis)
        axis.axvline(0, color="k", lw=0.6)
        axis.axvline(vals.mean(), color="k", ls="--", lw=0.8)
        axis.set_title(f"{name}: mean {vals.mean():+.4f}", fontsize=9)
        axis.set_xlabel("kernel value")
        axis.set_ylabel("")
        axis.xaxis.set_major_locator(MaxNLocator(5))  # 0.25 steps overlap at this width
    axes[0].set_ylabel("density")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


MAX_BINS = 80
"""The most bins of a histogram of kernel values (enough for a million values)."""


def _common_bins(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Edges from ``low`` to ``high``: numpy's ``"auto"`` count for ``values``, at most
    ``MAX_BINS``."""
    return np.linspace(low, high, _auto_bin_count(values, MAX_BINS, (low, high)) + 1)


def _auto_bin_count(values: np.ndarray, most: int,
                    value_range: tuple[float, float] | None = None) -> int:
    """numpy's ``"auto"`` number of bins for ``values`` (over ``value_range``), from 1 to
    ``most``."""
    auto = len(np.histogram_bin_edges(values, bins="auto", range=value_range)) - 1
    return min(max(auto, 1), most)


def plot_embedding(coords: np.ndarray, groups: np.ndarray, title: str = "") -> Figure:
    """A 2-D embedding, one colour per group."""
    groups = np.asarray(groups)
    figure, axis = plt.subplots(figsize=(4.8, 4.4))
    for name, colour in zip(np.unique(groups), GROUP_COLOURS, strict=False):
        points = coords[groups == name]
        axis.scatter(points[:, 0], points[:, 1], s=5, color=colour, label=name, alpha=0.8,
                     linewidths=0)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_xlabel("UMAP 1")
    axis.set_ylabel("UMAP 2")
    axis.legend(markerscale=3, frameon=False)
    axis.set_title(title)
    return figure


def plot_roc_curves(curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
                    title: str = "", highlight_first: bool = False) -> Figure:
    """ROC curves; each entry is ``(label, is_positive, score)``. ``highlight_first`` draws the
    first curve thick and black (the method, against baselines in colour)."""
    figure, axis = plt.subplots(figsize=(4.4, 4.2))
    for index, (label, positive, score) in enumerate(curves):
        false_positive, true_positive, _ = roc_curve(positive, score)
        style = {"color": "k", "lw": 2.0, "zorder": 3} if highlight_first and index == 0 else {
            "lw": 1.1}
        axis.plot(false_positive, true_positive, label=label, **style)
    axis.plot([0, 1], [0, 1], color="0.6", ls=":", lw=0.8)
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.legend(fontsize=7, frameon=False, loc="lower right")
    axis.set_title(title, fontsize=10)
    axis.set_aspect("equal")
    return figure


def plot_matrix(matrix: np.ndarray, labels: Sequence[str], title: str = "",
                colour_label: str = "") -> Figure:
    """A small annotated matrix (e.g. CKA between the kernels at each γ)."""
    figure, axis = plt.subplots(figsize=(1.0 + 0.75 * len(labels), 0.6 + 0.75 * len(labels)))
    _draw_matrix(figure, axis, matrix, labels, colour_label)
    axis.set_title(title, fontsize=10)
    return figure


def plot_cka_with_ceiling(matrix: np.ndarray, labels: Sequence[str], ceiling: float,
                          ceiling_label: str, title: str = "") -> Figure:
    """The CKA matrix between the kernels at each γ (sorted), beside the CKA of each pair of
    adjacent γ against the noise ceiling: the CKA of two runs at one γ that differ only by
    their seed. Adjacent γ near the ceiling are as alike as SGLD noise allows."""
    size = 1.0 + 0.75 * len(labels)
    figure, (left, right) = plt.subplots(1, 2, figsize=(size + 4.5, size - 0.4),
                                         width_ratios=[size, 4.0])
    _draw_matrix(figure, left, matrix, labels, "linear CKA")
    adjacent = [matrix[index, index + 1] for index in range(len(labels) - 1)]
    pairs = [f"{labels[index]}–{labels[index + 1]}" for index in range(len(labels) - 1)]
    right.plot(range(len(adjacent)), adjacent, "o-", label="adjacent γ")
    right.axhline(ceiling, color="k", linestyle="--", linewidth=1, label=ceiling_label)
    right.set_xticks(range(len(pairs)), pairs, rotation=30, fontsize=8)
    right.set_ylim(min(0.0, *adjacent), 1.02)
    right.set_xlabel("pair of localizations γ")
    right.set_ylabel("linear CKA of K")
    right.legend(fontsize=8, loc="lower right")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def _draw_matrix(figure: Figure, axis, matrix: np.ndarray, labels: Sequence[str],
                 colour_label: str) -> None:
    image = axis.imshow(matrix, cmap="viridis", vmin=min(0.0, float(np.min(matrix))), vmax=1.0)
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                  color="w" if value < 0.6 else "k")
    axis.set_xticks(range(len(labels)), labels)
    axis.set_yticks(range(len(labels)), labels)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label=colour_label)


def plot_lines(panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]], *,
               xlabel: str, ylabel: str, title: str = "", logx: bool = True,
               reference: float | None = None) -> Figure:
    """One panel per key; each holds named ``(x, y)`` lines. ``reference`` draws a level."""
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), sharey=True,
                                squeeze=False)
    for axis, (panel, lines) in zip(axes[0], panels.items(), strict=True):
        for name, (x, y) in lines.items():
            axis.plot(x, y, marker="o", ms=3, lw=1.2, label=name)
        if reference is not None:
            axis.axhline(reference, color="0.5", ls=":", lw=0.8)
        if logx:
            axis.set_xscale("log")
        axis.set_xlabel(xlabel)
        axis.set_title(panel, fontsize=9)
        axis.legend(fontsize=7, frameon=False)
    axes[0][0].set_ylabel(ylabel)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def plot_group_histograms(values: np.ndarray, positive: np.ndarray, names: tuple[str, str],
                          xlabel: str, title: str = "") -> Figure:
    """Histograms of positive values for two groups on a log axis, with each group's mean.

    Bar heights are the share of each group in a bin (seaborn's ``stat="probability"`` with
    ``common_norm=False``; not a density, which log-spaced bins would inflate at small values),
    so both groups are comparable whatever their sizes. Both are drawn as outlines over a light
    fill on the same bins, so neither hides the other. Values <= 0 are shown at the smallest
    positive value.
    """
    positive = np.asarray(positive, dtype=bool)
    floor = float(np.min(values[values > 0])) if np.any(values > 0) else 1e-12
    clipped = np.maximum(values, floor)
    bins = _auto_bin_count(np.log10(clipped), 60)  # log-spaced, as the axis
    labels = {name: f"{name} (n={mask.sum()}, mean {values[mask].mean():.3g})"
              for name, mask in ((names[0], ~positive), (names[1], positive))}
    table = pd.DataFrame({"value": clipped,
                          "group": np.where(positive, labels[names[1]], labels[names[0]])})
    figure, axis = plt.subplots(figsize=(5.2, 3.4))
    sns.histplot(table, x="value", hue="group", hue_order=list(labels.values()),
                 palette=list(GROUP_COLOURS[:2]), stat="probability", common_norm=False,
                 log_scale=True, bins=bins, element="step", alpha=0.15, linewidth=1.2, ax=axis)
    for mask, colour in zip((~positive, positive), GROUP_COLOURS, strict=False):
        axis.axvline(values[mask].mean(), color=colour, ls="--", lw=1)
    axis.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))  # labels at 2 and 5 do not overlap
    axis.set_xlabel(xlabel)
    axis.set_ylabel("share of the group")
    sns.move_legend(axis, "best", title=None, fontsize=8, frameon=False)
    axis.set_title(title, fontsize=10)
    return figure


def plot_labelled_embedding(coords: np.ndarray, labels: np.ndarray, marked: np.ndarray | None,
                            title: str = "", axis=None, marked_name: str = "",
                            legend: bool = True) -> Figure:
    """A 2-D embedding coloured by a categorical label (up to 10 colours, then they repeat);
    ``marked`` points get a black ring (e.g. the mislabeled inputs)."""
    figure = None
    if axis is None:
        figure, axis = plt.subplots(figsize=(5.0, 4.6))
    names, codes = np.unique(np.asarray(labels), return_inverse=True)
    palette = plt.get_cmap("tab10").colors
    for code, name in enumerate(names):
        points = coords[codes == code]
        axis.scatter(points[:, 0], points[:, 1], s=5, color=palette[code % 10], linewidths=0,
                     alpha=0.85, label=str(name))
    if marked is not None and np.any(marked):
        marked = np.asarray(marked, dtype=bool)
        axis.scatter(coords[marked, 0], coords[marked, 1], s=16, facecolors="none",
                     edgecolors="k", linewidths=0.6, label=f"{marked_name} (n={marked.sum()})")
    if legend:
        axis.legend(fontsize=6, frameon=False, markerscale=2, ncols=2 if len(names) > 4 else 1)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(title, fontsize=9)
    return axis.figure if figure is None else figure


def plot_embedding_grid(embeddings: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
                        title: str = "", marked_name: str = "") -> Figure:
    """Several embeddings side by side: ``(panel title, coords, labels, marked)`` each, with
    one legend for all (the labels are the same in every panel)."""
    columns = min(3, len(embeddings))
    rows = -(-len(embeddings) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.4 * rows + 0.5),
                                squeeze=False)
    for axis, (name, coords, labels, marked) in zip(axes.flat, embeddings, strict=False):
        plot_labelled_embedding(coords, labels, marked, name, axis=axis, marked_name=marked_name,
                                legend=False)
    for axis in list(axes.flat)[len(embeddings):]:
        axis.set_visible(False)
    handles, names = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncols=min(len(names), 11), fontsize=7,
                  frameon=False, markerscale=2)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return figure
