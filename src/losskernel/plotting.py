"""Figures. Each function draws one figure from plain arrays and returns it; saving is separate."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

GROUP_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def save_figure(figure: Figure, path: str | os.PathLike, record: Mapping[str, str | int]) -> None:
    """Save as PNG (or PDF) with the provenance record in the file's metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        metadata = {f"losskernel:{key}": str(value) for key, value in record.items()}
        metadata["Software"] = "losskernel"
    else:  # PDF metadata keys are fixed; keep the record in the Subject field
        metadata = {"Subject": "; ".join(f"{k}={v}" for k, v in record.items()),
                    "Creator": "losskernel", "CreationDate": None}
    figure.savefig(path, dpi=150, bbox_inches="tight", metadata=metadata)
    plt.close(figure)


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
    """Histograms of off-diagonal kernel values within each group and across groups."""
    groups = np.asarray(groups)
    names = list(np.unique(groups))
    off_diagonal = ~np.eye(len(groups), dtype=bool)
    panels = [(f"within {n}", (groups[:, None] == n) & (groups[None, :] == n) & off_diagonal)
              for n in names]
    panels.append(("cross-task", groups[:, None] != groups[None, :]))
    values = [kernel[mask] for _, mask in panels]
    low, high = np.quantile(np.concatenate(values), [0.001, 0.999])
    bins = np.linspace(low, high, 80)
    figure, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3), sharex=True,
                                sharey=True)
    for axis, (name, _), vals, colour in zip(axes, panels, values, GROUP_COLOURS, strict=False):
        axis.hist(vals, bins=bins, color=colour, density=True, alpha=0.85)
        axis.axvline(0, color="k", lw=0.6)
        axis.axvline(vals.mean(), color="k", ls="--", lw=0.8)
        axis.set_title(f"{name}: mean {vals.mean():+.4f}", fontsize=9)
        axis.set_xlabel("kernel value")
    axes[0].set_ylabel("density")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


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
                    title: str = "") -> Figure:
    """ROC curves; each entry is ``(label, is_positive, score)``."""
    figure, axis = plt.subplots(figsize=(4.4, 4.2))
    for label, positive, score in curves:
        false_positive, true_positive, _ = roc_curve(positive, score)
        axis.plot(false_positive, true_positive, lw=1.2, label=label)
    axis.plot([0, 1], [0, 1], color="0.6", ls=":", lw=0.8)
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.legend(fontsize=7, frameon=False, loc="lower right")
    axis.set_title(title, fontsize=10)
    axis.set_aspect("equal")
    return figure
