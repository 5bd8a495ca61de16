"""Task separation: how well a kernel tells two groups of inputs apart.

Readings of R at three strictnesses (a threshold on every pair, a kNN vote with or without some
edges), the mean of R within and across groups, and the cross-group covariance test of
Prop. 2 on the loss traces. ``task_separation`` computes them all for one kernel.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from losskernel.readings.neighbours import nearest_neighbours

KNN_READINGS: dict[str, tuple[str, str]] = {
    # metric: (edges removed from the neighbour graph, label in figures)
    "roc_auc": ("same_output", "same-output edges removed"),
    "roc_auc_shared_token": ("shared_token", "shared-token edges removed"),
    "roc_auc_all_edges": ("none", "all edges"),
}
"""The kNN task-vote readings; ``roc_auc`` (same-output edges removed) is the headline."""


def roc_auc_score(positive: np.ndarray, scores: np.ndarray) -> float:
    """scikit-learn's ROC-AUC, imported on first use: scikit-learn (with scipy.stats) takes
    0.8 s to import, which every sampling job of the workflow would otherwise pay."""
    from sklearn.metrics import roc_auc_score as sklearn_roc_auc_score

    return float(sklearn_roc_auc_score(positive, scores))


def pairwise_separation_auc(kernel: np.ndarray, groups: np.ndarray) -> float:
    """ROC-AUC of every unordered pair ``i < j`` scored by ``kernel[i, j]``; positive = same group.

    The loosest reading of "the kernel separates the tasks": a single threshold on R must
    split same-task pairs from cross-task pairs.
    """
    groups = np.asarray(groups)
    upper_i, upper_j = np.triu_indices(len(groups), k=1)
    same_group = groups[upper_i] == groups[upper_j]
    return float(roc_auc_score(same_group, kernel[upper_i, upper_j]))


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


def task_separation(
    correlation: np.ndarray, losses: np.ndarray, inputs: pd.DataFrame,
    excluded_edges: Callable[[pd.DataFrame, str], np.ndarray | None], knn_k: int,
    standard_error_batches: int,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Task separation readings of one kernel and the cross-task covariance test.

    ``correlation`` is R as stored (N x N; read in float64), ``losses`` the traces it came from
    as ``(chain, draw, N)``, ``inputs`` the inputs' table (``obs_id``, ``task`` with two tasks,
    ...) in the kernel's order, and ``excluded_edges(inputs, rule)`` the task's edge rule for
    each of ``KNN_READINGS``. Returns the metrics, in this order: every kNN reading
    (:func:`knn_vote_auc` with ``knn_k`` neighbours), ``roc_auc_pairwise``, the mean R within
    and across tasks (``within_task_mean_R``, ``cross_task_mean_R``, ``within_<task>_mean_R``),
    and ``cross_task_K``, ``cross_task_K_se``, ``cross_task_z`` (:func:`cross_group_covariance_z`
    with ``standard_error_batches`` batches per chain); and the per-input scores
    (``obs_id``, ``task``, one column per kNN reading).
    """
    if np.shape(losses)[-1] != len(inputs):
        raise ValueError(f"the losses hold {np.shape(losses)[-1]} inputs and the kernel "
                         f"{len(inputs)}; pass the traces the kernel was computed from")
    R = np.asarray(correlation).astype(np.float64)
    groups = inputs["task"].to_numpy()
    rows: dict[str, float] = {}
    scores = inputs[["obs_id", "task"]].copy()
    for reading, (edge_rule, _) in KNN_READINGS.items():
        auc, score = knn_vote_auc(R, groups, knn_k, excluded_edges(inputs, edge_rule))
        rows[reading] = auc
        scores[reading] = score
    rows["roc_auc_pairwise"] = pairwise_separation_auc(R, groups)
    means = block_means(R, groups)
    rows["within_task_mean_R"] = means.pop("within")
    rows["cross_task_mean_R"] = means.pop("cross")
    rows.update({f"{key}_mean_R": value for key, value in means.items()})

    names = np.unique(groups)
    covariance, standard_error, z = cross_group_covariance_z(
        losses, groups == names[0], groups == names[1], standard_error_batches
    )
    rows.update(cross_task_K=covariance, cross_task_K_se=standard_error, cross_task_z=z)
    return rows, scores
