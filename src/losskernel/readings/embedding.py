"""Low-dimensional maps of the inputs from distances induced by the normalized kernel R.

``embed_kernels`` maps several kernels with the same hyperparameters and edge rule.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel.readings import obs_table
from losskernel.readings.gamma_sweep import SIMILARITIES

if TYPE_CHECKING:
    import xarray as xr


def correlation_distance(correlation: np.ndarray) -> np.ndarray:
    """``d_ij = sqrt(2 (1 - R_ij))``: the Euclidean distance between standardized loss traces.

    It is a metric (unlike ``1 - R``), 0 on the diagonal and at most 2.
    """
    distance = np.sqrt(np.clip(2.0 * (1.0 - np.asarray(correlation, dtype=np.float64)), 0, 4))
    np.fill_diagonal(distance, 0.0)
    return distance


def embed_umap(
    correlation: np.ndarray,
    *,
    n_components: int = 2,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    excluded_edges: np.ndarray | None = None,
) -> np.ndarray:
    """UMAP coordinates ``(N, n_components)`` from ``correlation_distance(R)``.

    ``excluded_edges[i, j] = True`` removes the pair from the neighbour graph (set to the largest
    possible distance, 2), as the paper removes same-label edges so that the map shows structure
    beyond the label. A fixed ``seed`` makes UMAP deterministic (and single-threaded).
    """
    import umap  # imported here: numba compiles on first import (seconds), only when needed

    distance = correlation_distance(correlation)
    if excluded_edges is not None:
        distance = np.where(excluded_edges & ~np.eye(len(distance), dtype=bool), 2.0, distance)
    reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist,
                        metric="precomputed", random_state=seed)
    with warnings.catch_warnings():
        # Both are expected here: no inverse_transform for a precomputed metric, and a fixed
        # seed makes UMAP single-threaded.
        warnings.filterwarnings("ignore", message="using precomputed metric")
        warnings.filterwarnings("ignore", message="n_jobs value")
        return reducer.fit_transform(distance).astype(np.float32)


def embed_kernels(
    kernels: Sequence[tuple[str, xr.Dataset]], umap_settings: Mapping,
    excluded_edges: Callable[[pd.DataFrame, str], np.ndarray | None],
) -> pd.DataFrame:
    """2-D UMAPs from R, one per kernel, all with the same hyperparameters and edge rule.

    ``kernels`` are ``(name, correlation kernel dataset)`` pairs, the name that of the kernel's
    run (``seed0``, ``checkpoint3``); ``umap_settings`` holds ``n_neighbors``, ``min_dist``,
    ``seed``, ``excluded_edges`` (the rule passed to ``excluded_edges(inputs, rule)``),
    ``similarity`` (``R``, or ``absR``: ``|R|`` is embedded in place of R) and ``dimensions``.
    One call embeds them all, so numba's compilation on the first UMAP is paid once. The table
    has one row per (``embedding``, input) with ``umap_1``, ``umap_2`` and the inputs'
    coordinates; ``embedding`` is the kernel's name. The first kernel (the figure
    seed's) is also embedded in each other number of dimensions d of ``dimensions``, as
    ``<name>-<d>d`` (``seed0-3d``) with ``umap_1`` .. ``umap_<d>``.
    """
    tables = []
    for position, (name, correlation) in enumerate(kernels):
        inputs = obs_table(correlation)
        dimensions = umap_settings["dimensions"] if position == 0 else [2]
        excluded = excluded_edges(inputs, umap_settings["excluded_edges"])
        for components in sorted({2, *dimensions}):
            coords = embed_umap(
                SIMILARITIES[umap_settings["similarity"]](correlation["kernel"].values),
                n_components=components,
                n_neighbors=umap_settings["n_neighbors"], min_dist=umap_settings["min_dist"],
                seed=umap_settings["seed"], excluded_edges=excluded,
            )
            columns = {f"umap_{axis + 1}": coords[:, axis] for axis in range(components)}
            label = name if components == 2 else f"{name}-{components}d"
            tables.append(inputs.assign(embedding=label, **columns))
    return pd.concat(tables, ignore_index=True)
