"""Low-dimensional maps of the inputs from distances induced by the normalized kernel R."""

from __future__ import annotations

import warnings

import numpy as np


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
