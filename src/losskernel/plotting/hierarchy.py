"""Figure 1: the loss kernel against a class taxonomy (WordNet).

Each function draws one panel of the figure from plain arrays and returns it; saving is separate
(``plotting.save_figure``). Inputs are indexed by image ``i = 0..N-1``; ``positions[i]`` in
[0, 1] is the rank of the image's class in a depth-first traversal of the hypernym tree, so
nearby positions are nearby in WordNet.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from losskernel.readings.neighbours import nearest_neighbours

# 'turbo': a rainbow with smooth, nearly monotone lightness steps (unlike 'jet'), so the eye reads
# distances along the hierarchy as distances in colour; unlike 'hsv' it is not cyclic, so the two
# ends of the traversal (dark blue at 0, dark red at 1) cannot be mistaken for each other.
HIERARCHY_COLOURMAP = "turbo"
HIERARCHY_LABEL = "position in the WordNet hierarchy (depth-first rank)"
CAPTION_WIDTH = 14  # characters per caption line that fit under a thumbnail at 6 pt
_OUTLINE = [patheffects.withStroke(linewidth=2.5, foreground="w")]


def hierarchy_colours(positions: np.ndarray) -> np.ndarray:
    """The (N, 4) RGBA colour of each hierarchy position in [0, 1] (0 and 1 are the map's ends)."""
    positions = np.asarray(positions, dtype=np.float64)
    if not np.all((positions >= 0) & (positions <= 1)):
        raise ValueError(f"hierarchy positions must lie in [0, 1], got range "
                         f"[{np.nanmin(positions)}, {np.nanmax(positions)}] (or NaN)")
    return plt.get_cmap(HIERARCHY_COLOURMAP)(positions)


def block_average(matrix: np.ndarray, max_size: int) -> np.ndarray:
    """``matrix`` averaged over contiguous blocks so that neither side exceeds ``max_size``.

    Side ``n`` is cut into ``m = min(n, max_size)`` blocks at ``floor(b n / m)``, b = 0..m, so
    block sizes differ by at most one; each output entry is the mean of its block. A matrix
    already small enough is returned unchanged (as a float copy).
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    for axis in (0, 1):
        size = matrix.shape[axis]
        blocks = min(size, max_size)
        if blocks == size:
            continue
        edges = np.arange(blocks + 1) * size // blocks
        counts = np.diff(edges).reshape((-1, 1) if axis == 0 else (1, -1))
        matrix = np.add.reduceat(matrix, edges[:-1], axis=axis) / counts
    return matrix


def _marker_size(num_points: int) -> float:
    """Points shrink as they get more numerous, so 20 and 10,000 points both read well."""
    return float(np.clip(4000 / max(num_points, 1), 1.5, 40))


def _draw_hierarchy_scatter(axis: Axes, coords: np.ndarray, positions: np.ndarray) -> None:
    """The 2-D embedding, each point coloured by its hierarchy position, axes unticked."""
    axis.scatter(coords[:, 0], coords[:, 1], s=_marker_size(len(coords)),
                 c=hierarchy_colours(positions), linewidths=0, alpha=0.85)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_xlabel("UMAP 1")
    axis.set_ylabel("UMAP 2")


def _add_hierarchy_colourbar(figure: Figure, axes: Axes | list[Axes], label: str = HIERARCHY_LABEL,
                             **kwargs) -> None:
    mappable = ScalarMappable(Normalize(0, 1), plt.get_cmap(HIERARCHY_COLOURMAP))
    figure.colorbar(mappable, ax=axes, label=label, **kwargs)


def plot_hierarchy_umap(coords: np.ndarray, positions: np.ndarray, title: str = "",
                        groups: np.ndarray | None = None) -> Figure:
    """Fig. 1A (2-D): a UMAP of the kernel's distances, one point per image, coloured by the
    class's position in WordNet. If the kernel follows the hierarchy, colours form smooth
    regions. ``groups`` (a name per image, '' for none) labels each group at the median of
    its points.
    """
    figure, axis = plt.subplots(figsize=(6.0, 5.0))
    _draw_hierarchy_scatter(axis, coords, positions)
    if groups is not None:
        groups = np.asarray(groups)
        for name in dict.fromkeys(groups[groups != ""]):
            centre = np.median(coords[groups == name], axis=0)
            axis.text(*centre, str(name), ha="center", va="center", fontsize=8,
                      path_effects=_OUTLINE)
    _add_hierarchy_colourbar(figure, axis, fraction=0.046, pad=0.04)
    axis.set_title(title, fontsize=10)
    return figure


def plot_hierarchy_umap_3d(coords: np.ndarray, positions: np.ndarray, title: str = "",
                           views: Sequence[tuple[float, float]] = (
                               (20, 30), (20, 120), (20, 210), (60, 300))) -> Figure:
    """Fig. 1A (3-D): one 3-D UMAP of the kernel's distances seen from several
    ``(elevation, azimuth)`` viewpoints in degrees ("orbit views"), coloured by WordNet position.
    """
    figure = plt.figure(figsize=(3.2 * len(views) + 1.0, 3.6))
    colours = hierarchy_colours(positions)
    axes = []
    for index, (elevation, azimuth) in enumerate(views):
        axis = figure.add_subplot(1, len(views), index + 1, projection="3d")
        axis.scatter(coords[:, 0], coords[:, 1], coords[:, 2], c=colours,
                     s=_marker_size(len(coords)), linewidths=0, alpha=0.85)
        axis.view_init(elev=elevation, azim=azimuth)
        axis.set_xticklabels([])
        axis.set_yticklabels([])
        axis.set_zticklabels([])
        axis.set_title(f"elevation {elevation:g}°, azimuth {azimuth:g}°", fontsize=8)
        axes.append(axis)
    # Fixed margins instead of tight_layout, which cannot lay out 3-D axes (it warns).
    figure.subplots_adjust(left=0.0, right=0.9, bottom=0.02, top=0.85, wspace=0.02)
    _add_hierarchy_colourbar(figure, axes, HIERARCHY_LABEL.replace(" (", "\n("), fraction=0.02,
                             pad=0.02, shrink=0.9)
    figure.suptitle(title, fontsize=10)
    return figure


def plot_kernel_beside_hierarchy(kernel: np.ndarray, distance: np.ndarray, order: np.ndarray,
                                 title: str = "", max_pixels: int = 1000) -> Figure:
    """Fig. 1B: the normalized kernel R (left) beside the WordNet tree distance between the
    images' classes (right), rows and columns of both in the same ``order`` (by hierarchy
    position), so blocks of R that match blocks of small distance are taxonomy the kernel found.

    Matrices larger than ``max_pixels`` are block-averaged first (see ``block_average``); axis
    ticks still count images. R's colour is clipped symmetrically at the 99th percentile of the
    off-diagonal ``|values|`` shown.
    """
    order = np.asarray(order)
    size = len(order)
    shown_kernel = block_average(np.asarray(kernel)[np.ix_(order, order)], max_pixels)
    shown_distance = block_average(np.asarray(distance)[np.ix_(order, order)], max_pixels)
    off_diagonal = shown_kernel[~np.eye(len(shown_kernel), dtype=bool)]
    limit = float(np.quantile(np.abs(off_diagonal), 0.99)) if off_diagonal.size else 1.0
    extent = (-0.5, size - 0.5, size - 0.5, -0.5)  # ticks count images, not pixels
    figure, axes = plt.subplots(1, 2, figsize=(10.5, 4.8), layout="constrained")
    panels = (
        (shown_kernel, "RdBu_r", -(limit or 1.0), limit or 1.0, "R (loss kernel)",
         "kernel value (clipped at the 99th percentile)"),
        (shown_distance, "viridis_r", 0.0, float(shown_distance.max()) or 1.0,
         "WordNet", "tree distance between the classes"),
    )
    for axis, (matrix, colourmap, low, high, name, colour_label) in zip(axes, panels,
                                                                         strict=True):
        image = axis.imshow(matrix, cmap=colourmap, vmin=low, vmax=high, extent=extent,
                            interpolation="nearest")
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label=colour_label)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("image (ordered by WordNet position)")
    axes[0].set_ylabel("image (ordered by WordNet position)")
    if len(shown_kernel) < size:
        figure.supxlabel(f"{size} images shown as {len(shown_kernel)} × {len(shown_kernel)} "
                         "block means", fontsize=7, color="0.4")
    figure.suptitle(title, fontsize=10)
    return figure


@dataclass
class Inset:
    """One neighbourhood inset: an anchor image of ``group`` and its nearest neighbours under the
    kernel, most similar first."""

    group: str
    anchor: int
    neighbours: list[int]


def choose_insets(kernel: np.ndarray, groups: np.ndarray, k: int,
                  group_order: Sequence[str] | None = None,
                  excluded_edges: np.ndarray | None = None) -> list[Inset]:
    """An inset per group: the member whose neighbourhood is most its own group.

    For every image, its ``k`` nearest neighbours under ``kernel`` (larger = closer, excluded
    edges removed, see ``readings.neighbours.nearest_neighbours``). The anchor of group g is the
    member of g with the most members of g among its neighbours (ties: the lowest index); the
    inset shows its neighbours ordered by decreasing kernel value (ties: lower index first),
    fewer than ``k`` if fewer candidates remain. ``groups`` names each image's group ('' = none).
    Groups are taken in ``group_order`` (default: first appearance in ``groups``); absent ones
    are skipped.
    """
    groups = np.asarray(groups)
    if group_order is None:
        group_order = list(dict.fromkeys(groups[groups != ""]))
    present = [name for name in dict.fromkeys(group_order) if name and np.any(groups == name)]
    if not present:
        return []
    indices, valid = nearest_neighbours(kernel, k, excluded_edges)
    in_own_group = (groups[indices] == groups[:, None]) & valid
    insets = []
    for name in present:
        members = np.flatnonzero(groups == name)
        anchor = int(members[np.argmax(in_own_group[members].sum(axis=1))])
        neighbours = indices[anchor][valid[anchor]]
        closest_first = np.lexsort((neighbours, -np.asarray(kernel)[anchor, neighbours]))
        insets.append(Inset(str(name), anchor, [int(j) for j in neighbours[closest_first]]))
    return insets


def _caption_lines(text: str) -> str:
    """At most two lines of ``CAPTION_WIDTH`` characters; longer text ends in an ellipsis."""
    lines = textwrap.wrap(text, CAPTION_WIDTH, break_on_hyphens=False) or [""]
    if len(lines) > 2:
        lines = [lines[0], lines[1][: CAPTION_WIDTH - 1] + "…"]
    return "\n".join(lines)


def _draw_thumbnail(axis: Axes, thumbnail: np.ndarray | None, caption: str, frame: str,
                    frame_width: float) -> None:
    if thumbnail is None:
        axis.text(0.5, 0.5, "no image", ha="center", va="center", fontsize=6,
                  transform=axis.transAxes)
    else:
        axis.imshow(thumbnail, interpolation="antialiased")
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_edgecolor(frame)
        spine.set_linewidth(frame_width)
    axis.set_title(_caption_lines(caption), fontsize=6, pad=2, linespacing=1.0)


def plot_neighbourhood_insets(coords: np.ndarray, positions: np.ndarray, insets: Sequence[Inset],
                              thumbnails: Mapping[int, np.ndarray], captions: Mapping[int, str],
                              title: str = "") -> Figure:
    """Fig. 1 insets: the 2-D UMAP coloured by WordNet position with each inset's anchor (star,
    labelled with the group) and its nearest neighbours under the kernel (rings); beside it one
    row per inset: the anchor's thumbnail (thick frame, row labelled with the group) then its
    neighbours', most similar first, each captioned (e.g. with the class name; at most two
    lines). With no inset, the UMAP alone, titled "no inset group present".
    """
    num_columns = 1 + max((len(inset.neighbours) for inset in insets), default=0)
    thumbnail_width = 0.85 * num_columns if insets else 0.0
    height = max(5.0, 1.0 * len(insets) + 0.6)
    figure = plt.figure(figsize=(6.0 + thumbnail_width, height))
    layout = figure.add_gridspec(1, 2 if insets else 1,
                                 width_ratios=(6.0, thumbnail_width) if insets else None,
                                 wspace=0.08, left=0.04, right=0.98, bottom=0.04, top=0.92)
    umap_axis = figure.add_subplot(layout[0, 0])
    _draw_hierarchy_scatter(umap_axis, coords, positions)
    umap_axis.set_box_aspect(1)
    for inset in insets:
        anchor = coords[inset.anchor]
        umap_axis.scatter(*coords[inset.neighbours].T, s=30, facecolors="none", edgecolors="k",
                          linewidths=0.8)
        umap_axis.scatter(*anchor, s=120, marker="*", color="w", edgecolors="k", linewidths=0.8,
                          zorder=3)
        umap_axis.annotate(inset.group, anchor, xytext=(5, 5), textcoords="offset points",
                           fontsize=8, path_effects=_OUTLINE, zorder=4)
    if not insets:
        umap_axis.set_title("no inset group present", fontsize=9, color="0.3")
    _add_hierarchy_colourbar(figure, umap_axis, location="bottom", fraction=0.04, pad=0.06,
                             shrink=0.8)
    if insets:
        grid = layout[0, 1].subgridspec(len(insets), num_columns, hspace=0.6, wspace=0.08)
        for row, inset in enumerate(insets):
            for column, index in enumerate([inset.anchor, *inset.neighbours]):
                axis = figure.add_subplot(grid[row, column])
                is_anchor = column == 0
                _draw_thumbnail(axis, thumbnails.get(index), captions.get(index, str(index)),
                                "k" if is_anchor else "0.6", 2.0 if is_anchor else 0.6)
                if is_anchor:
                    axis.set_ylabel(inset.group, fontsize=8, rotation=0, ha="right",
                                    va="center")
    figure.suptitle(title, fontsize=10)
    return figure


def plot_taxonomic_lift(table: pd.DataFrame, title: str = "") -> Figure:
    """How much the kernel's nearest neighbours share a WordNet ancestor, by depth of ancestor.

    ``table`` has one row per depth with columns ``depth``, ``purity`` (share of neighbours with
    the same ancestor at that depth), ``chance`` (the share for random neighbours) and ``lift``
    (= purity / chance; 1 = no structure). Left: purity against chance; right: lift with a
    dashed line at 1, on a log axis when every drawn lift is positive. NaN lifts are not drawn.
    """
    table = table.sort_values("depth")
    figure, (share_axis, lift_axis) = plt.subplots(1, 2, figsize=(8.4, 3.4), sharex=True)
    share_axis.plot(table["depth"], table["purity"], marker="o", ms=4, lw=1.4, color="k",
                    label="purity (kernel neighbours)")
    share_axis.plot(table["depth"], table["chance"], marker="o", ms=3, lw=1.0, ls="--",
                    color="0.55", label="chance (random neighbours)")
    share_axis.set_ylim(0, 1.02)
    share_axis.set_ylabel("share of neighbours with the same ancestor")
    share_axis.legend(fontsize=7, frameon=False)
    drawn = table[np.isfinite(table["lift"].to_numpy(dtype=np.float64))]
    lift_axis.plot(drawn["depth"], drawn["lift"], marker="o", ms=4, lw=1.4, color="k")
    lift_axis.axhline(1.0, color="0.5", ls="--", lw=0.9)
    if len(drawn) and (drawn["lift"] > 0).all():
        lift_axis.set_yscale("log")
    lift_axis.set_ylabel("lift = purity / chance")
    for axis in (share_axis, lift_axis):
        axis.set_xlabel("WordNet depth of the shared ancestor")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
