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
    neighbour scores 0.5. So does an input whose losses never varied (a zero row of R, read off
    its zero diagonal): its row orders candidates by index alone, so it neither votes nor is
    anybody's neighbour.
    """
    groups = np.asarray(groups)
    names = np.unique(groups)
    if len(names) != 2:
        raise ValueError(f"knn_vote_auc needs exactly two groups, got {list(names)}")
    constant = np.diagonal(kernel) == 0
    if constant.any():
        excluded_edges = (np.zeros(kernel.shape, dtype=bool) if excluded_edges is None
                          else np.array(excluded_edges, dtype=bool))
        excluded_edges[:, constant] = True
        excluded_edges[constant, :] = True
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
    parameters per group) the expectation is exactly 0, so ``|z|`` stays of order 1.
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


def cross_group_entry_z2(
    losses: np.ndarray, in_group_a: np.ndarray, in_group_b: np.ndarray, num_batches: int
) -> tuple[float, float]:
    """The per-entry test of the cross-group block: the mean over its entries of ``z_ij²``,
    ``z_ij = K_ij / SE_ij``, with the null expectation of that mean.

    ``K_ij`` is the pooled covariance of inputs ``i in A`` and ``j in B``; ``SE_ij`` comes from
    batch means as in :func:`cross_group_covariance_z`: each chain's draws are cut into
    ``num_batches`` blocks, ``K^b_ij`` is the block's covariance about the pooled means, and
    ``SE_ij = std_b(K^b_ij) / sqrt(#blocks)``. Under Prop. 2 every ``K_ij`` is 0, ``z_ij`` is
    about Student-t with ``#blocks - 1`` degrees of freedom, and the mean of ``z²`` is about
    ``ν / (ν - 2)``. Couplings of opposite sign cancel in the block's mean (the mean test
    misses them) but each adds to ``z²`` here. Entries with ``SE_ij = 0`` (an input whose losses
    never vary) are left out. Returns ``(mean z², its null expectation)``.
    """
    num_chains, num_draws, _ = losses.shape
    if not 2 <= num_batches <= num_draws:
        raise ValueError(f"num_batches must be in [2, num_draws={num_draws}], got {num_batches}")
    centred = np.asarray(losses, dtype=np.float64)
    centred = centred - centred.mean(axis=(0, 1), keepdims=True)
    group_a, group_b = centred[:, :, in_group_a], centred[:, :, in_group_b]
    covariance = np.einsum("cta,ctb->ab", group_a, group_b) / (num_chains * num_draws - 1)
    size = num_draws // num_batches
    block_sum = np.zeros_like(covariance)
    block_square_sum = np.zeros_like(covariance)
    for chain in range(num_chains):
        for batch in range(num_batches):
            rows = slice(batch * size, (batch + 1) * size)
            block = group_a[chain, rows].T @ group_b[chain, rows] / size
            block_sum += block
            block_square_sum += block * block
    num_blocks = num_chains * num_batches
    variance = (block_square_sum - block_sum**2 / num_blocks) / (num_blocks - 1)
    standard_error = np.sqrt(np.clip(variance, 0.0, None) / num_blocks)
    usable = standard_error > 0
    z_squared = (covariance[usable] / standard_error[usable]) ** 2
    dof = num_blocks - 1
    expected = dof / (dof - 2) if dof > 2 else float("inf")
    return (float(z_squared.mean()) if z_squared.size else float("nan")), float(expected)


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
    ``cross_task_K``, ``cross_task_K_se``, ``cross_task_z`` (:func:`cross_group_covariance_z`
    with ``standard_error_batches`` batches per chain), and ``cross_task_entry_z2`` with its
    null expectation ``cross_task_entry_z2_null`` (:func:`cross_group_entry_z2`); and the
    per-input scores
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
    entry_z2, null = cross_group_entry_z2(losses, groups == names[0], groups == names[1],
                                          standard_error_batches)
    rows.update(cross_task_entry_z2=entry_z2, cross_task_entry_z2_null=null)
    return rows, scores
