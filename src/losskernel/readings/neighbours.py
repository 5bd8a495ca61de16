"""Nearest neighbours under a kernel, and how much they share an attribute.

Neighbours are found a row block at a time, so no dense N x N copy is made; under the
correlation kernel R they can come straight from the loss traces (``correlation_neighbours``).
"""

from __future__ import annotations

import numpy as np

from losskernel.method.kernel import CENTRINGS, Centring, standardized_losses


def nearest_neighbours(
    kernel: np.ndarray,
    k: int,
    excluded_edges: np.ndarray | None = None,
    block_rows: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar other inputs of each input under ``kernel`` (larger = closer).

    ``excluded_edges[i, j] = True`` removes j from i's candidates (for example pairs that share a
    label). Returns ``(indices, valid)`` of shape ``(N, min(k, N - 1))``; ``valid`` is False where
    fewer than ``k`` candidates were left, and the index there is a placeholder.

    Each row lists its neighbours by decreasing kernel value; equal values go to the lower column
    index, so the result is deterministic (``argsort(-kernel[i], kind="stable")[:k]`` over the
    candidates). NaN entries count as excluded. The kernel is read ``block_rows`` rows at a time,
    so the extra memory is ``O(block_rows * N)`` rather than a dense copy.
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1]:
        raise ValueError(f"kernel must be N x N, got shape {kernel.shape}")
    if excluded_edges is not None and np.shape(excluded_edges) != kernel.shape:
        raise ValueError(f"excluded_edges must have the kernel's shape {kernel.shape}, "
                         f"got {np.shape(excluded_edges)}")
    _check_neighbour_arguments(k, block_rows)
    # float32 and float64 order exactly as given; anything else is widened like the dense version.
    dtype = kernel.dtype if kernel.dtype in (np.float32, np.float64) else np.float64
    num_inputs = len(kernel)
    k = min(k, num_inputs - 1)
    indices = np.empty((num_inputs, k), dtype=np.int64)
    valid = np.empty((num_inputs, k), dtype=bool)
    for start in range(0, num_inputs, block_rows):
        stop = min(start + block_rows, num_inputs)
        block = np.array(kernel[start:stop], dtype=dtype, copy=True)
        excluded = None if excluded_edges is None else excluded_edges[start:stop]
        indices[start:stop], values = _block_top_k(block, start, k, excluded)
        valid[start:stop] = np.isfinite(values)
    return indices, valid


def correlation_neighbours(
    losses: np.ndarray,
    k: int,
    *,
    centring: Centring = "pooled",
    exclude_same: np.ndarray | None = None,
    block_rows: int = 512,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`nearest_neighbours` under the correlation kernel R, without forming R.

    From ``losses (chain, draw, N)`` and their standardized columns (S x N,
    :func:`losskernel.method.kernel.standardized_losses`):

        Z = Lc / ||Lc||_column     (a zero column stays zero, so R_ij = 0 with every j)
        R = Z^T Z                   computed one row block at a time: R_B = Z[:, B]^T Z

    which is ``method.kernel.compute_kernel(losses, "correlation", centring)`` up to float32
    rounding (Z and each block are float32, clipped to [-1, 1]). ``exclude_same`` (one label per
    input, e.g. the class) removes every j with the same label as i from i's candidates.
    Neighbours are ordered as in :func:`nearest_neighbours`: decreasing R, equal values to the
    lower index.

    Returns ``(indices, similarity, valid)`` of shape ``(N, min(k, N - 1))``: the neighbours,
    their R (float32) and whether each slot holds a real candidate (where False, similarity is
    -inf and the index a placeholder). Memory: Z (S N 4 bytes) plus one block
    (``block_rows`` N 4 bytes, and the block's partition indices at 8 bytes) plus the outputs:
    about 0.7 GB for N = 50k, S = 1000. ``threads`` limits numpy's BLAS for the call.
    Only numpy: it runs in the workflow's analysis environment, which has no torch.
    """
    from threadpoolctl import threadpool_limits

    losses = np.asarray(losses)
    if losses.ndim != 3:
        raise ValueError(f"losses must have dims (chain, draw, obs_id), got shape {losses.shape}")
    if centring not in CENTRINGS:
        raise ValueError(f"centring must be one of {CENTRINGS}, got {centring!r}")
    num_inputs = losses.shape[-1]
    codes = None
    if exclude_same is not None:
        if np.shape(exclude_same) != (num_inputs,):
            raise ValueError(f"exclude_same must hold one label per input ({num_inputs}), "
                             f"got shape {np.shape(exclude_same)}")
        codes = np.unique(exclude_same, return_inverse=True)[1].reshape(-1)
    _check_neighbour_arguments(k, block_rows)
    k = min(k, num_inputs - 1)

    with threadpool_limits(threads):
        standardized, _ = standardized_losses(losses, centring)
        buffer = np.empty((min(block_rows, num_inputs), num_inputs), dtype=np.float32)
        indices = np.empty((num_inputs, k), dtype=np.int64)
        similarity = np.empty((num_inputs, k), dtype=np.float32)
        for start in range(0, num_inputs, block_rows):
            stop = min(start + block_rows, num_inputs)
            block = buffer[: stop - start]
            np.matmul(standardized[:, start:stop].T, standardized, out=block)
            np.clip(block, -1.0, 1.0, out=block)  # rounding can step just past ±1
            excluded = None if codes is None else codes[start:stop, None] == codes[None, :]
            indices[start:stop], similarity[start:stop] = _block_top_k(block, start, k, excluded)
    return indices, similarity, np.isfinite(similarity)


def _check_neighbour_arguments(k: int, block_rows: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")


def _block_top_k(
    block: np.ndarray, start: int, k: int, excluded: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` columns of each row of ``block`` = rows ``start:start + len(block)`` of a kernel.

    Masks in place with -inf the diagonal, ``excluded`` (bool, block-shaped) and NaN, then orders
    each row's choice by (value descending, column ascending). ``argpartition`` leaves ties
    arbitrary; the order within its k is repaired by a lexsort, and a row with more than k
    entries >= its k-th value (a tie across the cut, including rows with fewer than k finite
    candidates) is redone exactly with a stable sort over those entries. Returns
    ``(indices, values)``, both ``(len(block), k)``.
    """
    rows = np.arange(len(block))
    block[rows, start + rows] = -np.inf
    if excluded is not None:
        np.putmask(block, np.asarray(excluded, dtype=bool), -np.inf)
    np.putmask(block, np.isnan(block), -np.inf)
    if k == 0:
        return np.empty((len(block), 0), dtype=np.int64), np.empty((len(block), 0), block.dtype)
    num_columns = block.shape[1]
    # the k largest sit at the end of an ascending partition (no negated copy of the block)
    indices = np.argpartition(block, num_columns - k, axis=1)[:, num_columns - k:]
    values = np.take_along_axis(block, indices, axis=1)
    order = np.lexsort((indices, -values), axis=1)
    indices = np.take_along_axis(indices, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    threshold = values[:, -1:]
    for row in np.flatnonzero(np.count_nonzero(block >= threshold, axis=1) > k):
        candidates = np.flatnonzero(block[row] >= threshold[row])  # ascending columns
        chosen = candidates[np.argsort(-block[row, candidates], kind="stable")[:k]]
        indices[row], values[row] = chosen, block[row, chosen]
    return indices, values


def neighbour_lift(
    kernel: np.ndarray, attribute: np.ndarray, k: int, excluded_edges: np.ndarray | None = None
) -> tuple[float, float, float]:
    """How much more often an input's ``k`` nearest neighbours share its attribute than chance.

    ``purity`` = share of (input, neighbour) pairs with equal attribute; ``chance`` = the same
    share over every candidate pair (i ≠ j, not excluded), which is what random neighbours would
    give; ``lift = purity / chance`` (1 = no structure). Returns ``(purity, chance, lift)``.
    Where the excluded edges leave no candidate pair sharing the attribute (chance 0, e.g. the
    training label with same-label edges removed), purity is 0 and the lift is NaN: undefined.
    """
    attribute = np.asarray(attribute)
    indices, valid = nearest_neighbours(kernel, k, excluded_edges)
    purity = float(((attribute[indices] == attribute[:, None]) & valid).sum() / valid.sum())
    candidates = ~np.eye(len(attribute), dtype=bool)
    if excluded_edges is not None:
        candidates &= ~excluded_edges
    same = attribute[:, None] == attribute[None, :]
    chance = float((same & candidates).sum() / candidates.sum())
    return purity, chance, purity / chance if chance > 0 else float("nan")
