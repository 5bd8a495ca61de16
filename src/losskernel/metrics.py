"""Scores read off a kernel: task separation, kernel similarity, the Prop. 2 control statistic."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def pairwise_separation_auc(kernel: np.ndarray, groups: np.ndarray) -> float:
    """ROC-AUC of every unordered pair ``i < j`` scored by ``kernel[i, j]``; positive = same group.

    The loosest reading of "the kernel separates the tasks": a single threshold on R must
    split same-task pairs from cross-task pairs.
    """
    groups = np.asarray(groups)
    upper_i, upper_j = np.triu_indices(len(groups), k=1)
    same_group = groups[upper_i] == groups[upper_j]
    return float(roc_auc_score(same_group, kernel[upper_i, upper_j]))


def nearest_neighbours(
    kernel: np.ndarray, k: int, excluded_edges: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar other inputs of each input under ``kernel`` (larger = closer).

    ``excluded_edges[i, j] = True`` removes j from i's candidates (for example pairs that share a
    label). Returns ``(indices, valid)`` of shape ``(N, k)``; ``valid`` is False where fewer than
    ``k`` candidates were left.
    """
    similarity = np.array(kernel, dtype=np.float64, copy=True)
    np.fill_diagonal(similarity, -np.inf)
    if excluded_edges is not None:
        similarity[excluded_edges] = -np.inf
    k = min(k, len(similarity) - 1)
    indices = np.argpartition(-similarity, kth=k - 1, axis=1)[:, :k]
    valid = np.isfinite(np.take_along_axis(similarity, indices, axis=1))
    return indices, valid


def knn_vote_auc(
    kernel: np.ndarray, groups: np.ndarray, k: int, excluded_edges: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Input-level separation: each input's group predicted by a leave-one-out vote of neighbours.

    For two groups, input i scores ``s_i`` = fraction of its ``k`` nearest neighbours under the
    kernel that belong to the first group (in sorted order); the ROC-AUC of ``s`` against
    "i is in the first group" is returned with the scores. ``excluded_edges`` removes candidate
    neighbours (the strict reading removes pairs with the same output). An input with no valid
    neighbour scores 0.5.
    """
    groups = np.asarray(groups)
    names = np.unique(groups)
    if len(names) != 2:
        raise ValueError(f"knn_vote_auc needs exactly two groups, got {list(names)}")
    indices, valid = nearest_neighbours(kernel, k, excluded_edges)
    in_first = (groups[indices] == names[0]) & valid
    num_valid = valid.sum(axis=1)
    scores = np.where(num_valid > 0, in_first.sum(axis=1) / np.maximum(num_valid, 1), 0.5)
    return float(roc_auc_score(groups == names[0], scores)), scores


def block_means(kernel: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Mean off-diagonal kernel value within each group and across groups.

    Keys: ``within_<group>`` for every group, ``within`` (all within-group pairs) and ``cross``.
    """
    groups = np.asarray(groups)
    same = groups[:, None] == groups[None, :]
    off_diagonal = ~np.eye(len(groups), dtype=bool)
    means = {}
    for name in np.unique(groups):
        members = groups == name
        means[f"within_{name}"] = float(kernel[np.outer(members, members) & off_diagonal].mean())
    means["within"] = float(kernel[same & off_diagonal].mean())
    means["cross"] = float(kernel[~same].mean())
    return means


def linear_cka(kernel_a: np.ndarray, kernel_b: np.ndarray) -> float:
    """Linear CKA between two N x N kernels.

        CKA(K1, K2) = <H K1 H, H K2 H>_F / (||H K1 H||_F ||H K2 H||_F),   H = I - 11^T / N

    1 for kernels equal up to a positive scale; invariant to adding a constant to either kernel.
    """
    def double_centre(kernel: np.ndarray) -> np.ndarray:
        kernel = np.asarray(kernel, dtype=np.float64)
        return (kernel - kernel.mean(axis=0, keepdims=True) - kernel.mean(axis=1, keepdims=True)
                + kernel.mean())

    centred_a, centred_b = double_centre(kernel_a), double_centre(kernel_b)
    denominator = np.linalg.norm(centred_a) * np.linalg.norm(centred_b)
    if denominator == 0:
        raise ValueError("linear CKA is undefined for a constant kernel")
    return float(np.sum(centred_a * centred_b) / denominator)


def cross_group_covariance_z(
    losses: np.ndarray, in_group_a: np.ndarray, in_group_b: np.ndarray, num_batches: int
) -> tuple[float, float, float]:
    """Mean cross-group covariance ``mean_{i in A, j in B} K_ij`` and its batch-means std. error.

    With pooled centring the mean of the cross block equals the covariance of the two groups' mean
    losses, ``Cov_s(a_s, b_s)`` with ``a_s = mean_{i in A} l_i(w_s)``. Its standard error comes from
    batch means: each chain's draws are cut into ``num_batches`` contiguous blocks, the products
    ``(a_s - a)(b_s - b)`` are averaged per block, and SE = std(block means) / sqrt(#blocks). Blocks
    must be much longer than the autocorrelation time of the traces.

    Returns ``(mean cross covariance, standard error, z = mean / SE)``. Under Prop. 2 (disjoint
    parameters per group) the expectation is exactly 0, so |z| stays of order 1.
    """
    num_chains, num_draws, _ = losses.shape
    if not 2 <= num_batches <= num_draws:
        raise ValueError(f"num_batches must be in [2, num_draws={num_draws}], got {num_batches}")
    losses = np.asarray(losses, dtype=np.float64)
    mean_a = losses[:, :, in_group_a].mean(axis=2)
    mean_b = losses[:, :, in_group_b].mean(axis=2)
    products = (mean_a - mean_a.mean()) * (mean_b - mean_b.mean())
    usable = num_draws - num_draws % num_batches
    block_means = products[:, :usable].reshape(num_chains, num_batches, -1).mean(axis=2).ravel()
    covariance = products.sum() / (products.size - 1)
    standard_error = block_means.std(ddof=1) / np.sqrt(block_means.size)
    return float(covariance), float(standard_error), float(covariance / standard_error)


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
