"""Kernels against a class taxonomy: lowest common ancestors, tree distances, taxonomic lift.

A taxonomy is given as one root-to-class path per input, the node names joined by '>'
(in WordNet, 'entity.n.01>physical_entity.n.01>...>tench.n.01').
The depth of a path is its number of nodes minus one (the root has depth 0) and the depth of
the lowest common ancestor (LCA) of two inputs is the length of the common prefix of their
paths minus one. All paths must start at the same root, so LCA depths are >= 0.

Everything is computed over the unique paths (classes) and then indexed by input, so N = 10,000
inputs of 1,000 classes cost a 1,000 x 1,000 table plus the N x N result in a small integer type.

``taxonomy`` reads one kernel: the taxonomic lift per depth and its one-number summary.
``hierarchy_tests`` adds what a reviewer asks of a lift: its class-permutation p-value, and the
class-level rank correlation between similarity and tree distance with its own p-value.
``branch_contrast`` and ``confusion_correlation`` read a similarity's class means against the
tree's branches and against the classes the model confuses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from losskernel.readings.neighbours import nearest_neighbours

PATH_SEPARATOR = ">"


def lca_depth_matrix(paths: Sequence[str]) -> np.ndarray:
    """Depth of the lowest common ancestor of every pair of inputs, shape (N, N)::

        lca_ij = |common prefix of path_i and path_j| - 1,    lca_ii = depth_i = |path_i| - 1

    Returned in the smallest integer type that holds the depths (int8 for WordNet).
    """
    unique_lca, _, inverse = _unique_lca(paths)
    return unique_lca[inverse[:, None], inverse[None, :]]


def tree_distance_matrix(paths: Sequence[str]) -> np.ndarray:
    """Path length between the two classes in the tree, shape (N, N); 0 for the same class.

        dist_ij = depth_i + depth_j - 2 lca_ij

    The number of edges from class i up to the LCA and down to class j: the ground-truth
    distance beside the kernel in Figure 1B.
    """
    unique_lca, depths, inverse = _unique_lca(paths)
    distance = depths[:, None] + depths[None, :] - 2 * unique_lca.astype(np.int64)
    distance = distance.astype(_smallest_int_dtype(int(distance.max())))
    return distance[inverse[:, None], inverse[None, :]]


def taxonomic_lift(
    kernel: np.ndarray,
    paths: Sequence[str],
    k: int,
    excluded_edges: np.ndarray | None = None,
    depths: Sequence[int] | None = None,
) -> pd.DataFrame:
    """How much deeper in the taxonomy the kernel's neighbours meet than random inputs do.

    Edges are the ``k`` nearest neighbours of each input under ``kernel`` (larger = more
    similar), ``i -> j`` for j among i's neighbours
    (:func:`losskernel.readings.neighbours.nearest_neighbours`; ``excluded_edges[i, j] = True``
    removes j from i's candidates, e.g. same-label pairs).
    Candidate pairs are all ordered ``(i, j)`` with i ≠ j and not excluded. For each depth d:

        purity(d) = P_edges[lca_ij >= d]             (share of the kNN edges)
        chance(d) = P_candidate pairs[lca_ij >= d]    (what random neighbours would give)
        lift(d)   = purity(d) / chance(d)             (1 = no structure; NaN if chance is 0)

    ``depths`` defaults to 1..(deepest path); at depth 0 every pair shares the root and the lift
    is 1 by construction. Returns one row per depth with columns ``depth, purity, chance, lift,
    edges, candidate_pairs``, where ``edges`` (number of valid kNN edges) and
    ``candidate_pairs`` are the denominators of purity and chance, so ``purity * edges`` is the
    count of edges meeting at depth >= d.
    """
    edge_counts, candidate_counts = _lca_counts(kernel, paths, k, excluded_edges)
    if depths is None:
        depths = range(1, len(edge_counts))
    depths = np.asarray(depths, dtype=np.int64)
    num_edges, num_candidates = int(edge_counts.sum()), int(candidate_counts.sum())
    purity = _at_least(edge_counts, depths) / num_edges
    chance = _at_least(candidate_counts, depths) / num_candidates
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(chance > 0, purity / chance, np.nan)
    return pd.DataFrame({
        "depth": depths,
        "purity": purity,
        "chance": chance,
        "lift": lift,
        "edges": num_edges,
        "candidate_pairs": num_candidates,
    })


def hierarchy_lift(
    kernel: np.ndarray, paths: Sequence[str], k: int, excluded_edges: np.ndarray | None = None
) -> tuple[float, float, float]:
    """One-number summary of :func:`taxonomic_lift`: mean LCA depth of kNN edges over chance.

    Returns ``(E_edges[lca], E_candidate pairs[lca], their ratio)`` with the edges and candidate
    pairs of :func:`taxonomic_lift`; the ratio is NaN when the candidate mean is 0. As the LCA
    depth is a non-negative integer, ``Σ_{d≥1} P(lca ≥ d) = E[lca]``, so

        ratio = Σ_d purity(d) / Σ_d chance(d) = Σ_d chance(d) lift(d) / Σ_d chance(d),

    the per-depth lifts averaged with weights equal to chance.
    """
    edge_counts, candidate_counts = _lca_counts(kernel, paths, k, excluded_edges)
    levels = np.arange(len(edge_counts))
    mean_edges = float(levels @ edge_counts / edge_counts.sum())
    mean_candidates = float(levels @ candidate_counts / candidate_counts.sum())
    ratio = mean_edges / mean_candidates if mean_candidates > 0 else float("nan")
    return mean_edges, mean_candidates, ratio


def taxonomy(correlation: np.ndarray, wordnet_paths: Sequence[str], knn_k: int,
             excluded_edges: np.ndarray | None) -> tuple[pd.DataFrame, dict[str, float]]:
    """The taxonomic lift of R's ``knn_k``-nearest neighbours, ``excluded_edges`` removed (the
    paper removes same-class edges).

    ``wordnet_paths`` holds one taxonomy path per input (see the module docstring). Per depth d
    (the table, :func:`taxonomic_lift`): ``lift(d) = P_edges[depth(LCA) ≥ d] /
    P_candidates[depth(LCA) ≥ d]``, the candidates being every pair left by the exclusions
    (what random neighbours would give). Metrics: ``hierarchy_lift`` = ``edge_lca_depth`` /
    ``chance_lca_depth``, the mean LCA depth of the edges over that of the candidates
    (:func:`hierarchy_lift`).
    """
    paths = list(wordnet_paths)
    table = taxonomic_lift(correlation, paths, knn_k, excluded_edges)
    edge_depth, chance_depth, lift = hierarchy_lift(correlation, paths, knn_k, excluded_edges)
    return table, {"hierarchy_lift": lift, "edge_lca_depth": edge_depth,
                   "chance_lca_depth": chance_depth}


def hierarchy_tests(
    similarity: np.ndarray, paths: Sequence[str], k: int, excluded_edges: np.ndarray | None,
    depth: int, permutations: int, seed: int,
) -> dict[str, float]:
    """A similarity's agreement with the taxonomy, each number with a permutation p-value.

    - ``hierarchy_lift`` (:func:`hierarchy_lift`, with ``edge_lca_depth`` and
      ``chance_lca_depth``) and ``depth_lift`` = lift(``depth``) (:func:`taxonomic_lift`) of the
      ``k``-nearest-neighbour edges under ``similarity`` (larger = closer), ``excluded_edges``
      removed;
    - ``rank_correlation``: Spearman's ρ over the pairs of classes a ≠ b between the mean
      cross-class similarity ``S̄_ab`` (:func:`class_similarity`) and minus their tree distance,
      so that ρ > 0 when classes close in the tree are similar.

    The null shuffles the classes over the tree: a permutation π gives class a the path of
    class π(a), and the neighbour edges and class similarities stay as they are. Each
    ``<metric>_p`` is one-sided, ``(1 + #{π: value_π ≥ value}) / (1 + permutations)``, from
    ``permutations`` random permutations drawn with ``seed``. A class here is a unique path.
    """
    unique_lca, depths, inverse = _unique_lca(paths)
    edges, candidates = _class_pair_counts(similarity, inverse, len(depths), k, excluded_edges)
    rng = np.random.default_rng(seed)
    identity = np.arange(len(depths))
    shuffles = np.vstack([identity, rng.permuted(np.tile(identity, (permutations, 1)), axis=1)])
    lca = unique_lca.astype(np.int64)[shuffles[:, :, None], shuffles[:, None, :]]  # (P+1, C, C)

    def share(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
        return (counts * values).sum(axis=(1, 2)) / counts.sum()

    edge_depth, chance_depth = share(edges, lca), share(candidates, lca)
    reaching = (lca >= depth).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistics = {
            "hierarchy_lift": edge_depth / chance_depth,
            "depth_lift": share(edges, reaching) / share(candidates, reaching),
            "rank_correlation": _rank_correlations(
                class_similarity(similarity, inverse, len(depths)),
                depths[shuffles][:, :, None] + depths[shuffles][:, None, :] - 2 * lca),
        }
    values = {"edge_lca_depth": float(edge_depth[0]), "chance_lca_depth": float(chance_depth[0])}
    for name, statistic in statistics.items():
        values[name] = float(statistic[0])
        values[f"{name}_p"] = float((1 + np.sum(statistic[1:] >= statistic[0]))
                                    / (1 + permutations))
    return values


def class_similarity(similarity: np.ndarray, classes: np.ndarray, num_classes: int
                     ) -> np.ndarray:
    """Mean similarity between the inputs of two classes, ``(C, C)``:

        S̄_ab = mean over i in a, j in b, i ≠ j of similarity_ij

    ``classes[i]`` is the class index of input i (0..C-1).
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    member = np.zeros((num_classes, len(classes)))
    member[classes, np.arange(len(classes))] = 1.0
    sums = member @ (similarity - np.diag(np.diag(similarity))) @ member.T
    sizes = member.sum(axis=1)
    pairs = np.outer(sizes, sizes) - np.diag(sizes)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, sums / pairs, np.nan)


def branch_contrast(similarity: np.ndarray, paths: Sequence[str], depth: int
                    ) -> tuple[float, float]:
    """Mean class similarity between classes of one branch, and between classes of different
    branches, a branch being a node at ``depth`` of the tree.

        within = mean over class pairs a ≠ b with lca_ab ≥ depth of S̄_ab
        across = mean over class pairs a ≠ b with lca_ab < depth of S̄_ab

    with ``S̄_ab`` the mean cross-class similarity (:func:`class_similarity`); every class pair
    weighs the same. A class is a unique path. NaN when no pair is of the kind.
    """
    unique_lca, depths, inverse = _unique_lca(paths)
    means = class_similarity(similarity, inverse, len(depths))
    upper = np.triu_indices(len(depths), k=1)
    same_branch = unique_lca[upper] >= depth
    pairs = means[upper]

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else float("nan")

    return mean(pairs[same_branch]), mean(pairs[~same_branch])


def soft_confusion(probabilities: np.ndarray, labels: np.ndarray, num_classes: int
                   ) -> np.ndarray:
    """How much the model confuses two classes, ``(C, C)`` and symmetric:

        P̄_ab = mean over inputs i of class a of p_i(b),    confusion_ab = (P̄_ab + P̄_ba) / 2

    from the predicted probabilities ``(N, C)`` of inputs with true ``labels`` (0..C-1).
    """
    member = np.zeros((num_classes, len(labels)))
    member[labels, np.arange(len(labels))] = 1.0
    sizes = member.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_probabilities = (member @ np.asarray(probabilities, dtype=np.float64)) / sizes
    return (mean_probabilities + mean_probabilities.T) / 2


def confusion_correlation(similarity: np.ndarray, labels: np.ndarray,
                          confusion: np.ndarray) -> float:
    """Spearman's ρ over the class pairs a < b between the mean cross-class similarity
    ``S̄_ab`` (:func:`class_similarity`, classes = ``labels``) and the model's ``confusion_ab``
    (:func:`soft_confusion`): positive when the classes the model confuses are similar, negative
    when the similarity sets them apart. Pairs of a class without inputs are left out."""
    from scipy.stats import spearmanr

    means = class_similarity(similarity, labels, len(confusion))
    upper = np.triu_indices(len(confusion), k=1)
    means, confusion = means[upper], confusion[upper]
    present = np.isfinite(means) & np.isfinite(confusion)  # classes without inputs drop out
    if present.sum() < 2:
        return float("nan")
    return float(spearmanr(means[present], confusion[present]).statistic)


def _rank_correlations(class_means: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Spearman's ρ between ``class_means`` and ``-distances[p]`` over the pairs a < b of
    classes, for each p (average ranks for ties; NaN when either side is constant)."""
    from scipy.stats import rankdata

    upper = np.triu_indices(len(class_means), k=1)
    similarity_ranks = rankdata(class_means[upper])
    closeness_ranks = rankdata(-distances[:, upper[0], upper[1]], axis=1)
    x = similarity_ranks - similarity_ranks.mean()
    y = closeness_ranks - closeness_ranks.mean(axis=1, keepdims=True)
    return (y @ x) / (np.linalg.norm(x) * np.linalg.norm(y, axis=1))


def _class_pair_counts(
    kernel: np.ndarray, classes: np.ndarray, num_classes: int, k: int,
    excluded_edges: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(C, C)`` counts of the valid kNN edges i -> j and of the candidate pairs (i ≠ j, not
    excluded) from class a to class b."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    indices, valid = nearest_neighbours(kernel, k, excluded_edges)
    sources = np.broadcast_to(classes[:, None], indices.shape)[valid]
    edges = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(edges, (sources, classes[indices][valid]), 1)
    if edges.sum() == 0:
        raise ValueError("no kNN edge is left: every candidate neighbour is excluded")
    sizes = np.bincount(classes, minlength=num_classes).astype(np.int64)
    candidates = np.outer(sizes, sizes) - np.diag(sizes)
    if excluded_edges is not None:
        rows, cols = np.nonzero(excluded_edges)
        off_diagonal = rows != cols
        np.add.at(candidates, (classes[rows[off_diagonal]], classes[cols[off_diagonal]]), -1)
    return edges, candidates


def _lca_counts(
    kernel: np.ndarray, paths: Sequence[str], k: int, excluded_edges: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Histograms over LCA depth 0..D of the valid kNN edges and of the candidate pairs."""
    num_inputs = len(paths)
    if np.shape(kernel) != (num_inputs, num_inputs):
        raise ValueError(f"kernel must be {num_inputs} x {num_inputs} (one row per path), "
                         f"got shape {np.shape(kernel)}")
    if excluded_edges is not None and np.shape(excluded_edges) != (num_inputs, num_inputs):
        raise ValueError(f"excluded_edges must be {num_inputs} x {num_inputs}, "
                         f"got shape {np.shape(excluded_edges)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    unique_lca, depths, inverse = _unique_lca(paths)
    num_levels = int(depths.max()) + 1

    indices, valid = nearest_neighbours(kernel, k, excluded_edges)
    edge_lca = unique_lca[inverse[:, None], inverse[indices]][valid]
    edge_counts = np.bincount(edge_lca, minlength=num_levels)
    if edge_counts.sum() == 0:
        raise ValueError("no kNN edge is left: every candidate neighbour is excluded")

    # Ordered pairs i != j between classes a and b number n_a n_b (a != b) or n_a (n_a - 1).
    class_sizes = np.bincount(inverse).astype(np.int64)
    pair_counts = np.outer(class_sizes, class_sizes) - np.diag(class_sizes)
    candidate_counts = np.zeros(num_levels, dtype=np.int64)
    np.add.at(candidate_counts, unique_lca.ravel(), pair_counts.ravel())
    if excluded_edges is not None:
        rows, cols = np.nonzero(excluded_edges)
        off_diagonal = rows != cols
        excluded_lca = unique_lca[inverse[rows[off_diagonal]], inverse[cols[off_diagonal]]]
        candidate_counts -= np.bincount(excluded_lca, minlength=num_levels)
    return edge_counts, candidate_counts


def _at_least(counts: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """``Σ_{d' >= d} counts[d']`` for each d in ``depths`` (total for d <= 0, 0 past the end)."""
    tail = np.concatenate([np.cumsum(counts[::-1])[::-1], [0]])
    return tail[np.clip(depths, 0, len(counts))].astype(np.float64)


def _unique_lca(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LCA depths between the unique paths, their depths, and each input's unique index.

    Node names are coded per level; the common prefix of paths a and b has length
    ``Σ_l Π_{l' <= l} [node_a(l') == node_b(l')]``, accumulated level by level over the
    U x U unique pairs.
    """
    if len(paths) == 0:
        raise ValueError("paths is empty")
    unique_paths, inverse = np.unique(np.asarray(paths, dtype=str), return_inverse=True)
    split = [str(path).split(PATH_SEPARATOR) for path in unique_paths]
    for path in split:
        if not all(path):
            raise ValueError(f"a path has an empty node name: {PATH_SEPARATOR.join(path)!r}")
    roots = {path[0] for path in split}
    if len(roots) > 1:
        raise ValueError(f"all paths must start at the same root, got roots {sorted(roots)}")
    lengths = np.array([len(path) for path in split])
    codes: dict[str, int] = {}
    nodes = np.full((len(split), lengths.max()), -1, dtype=np.int64)
    for row, path in enumerate(split):
        nodes[row, : len(path)] = [codes.setdefault(name, len(codes)) for name in path]
    common = np.zeros((len(split), len(split)), dtype=np.int64)
    shared = np.ones((len(split), len(split)), dtype=bool)
    for level in range(lengths.max()):
        present = nodes[:, level] >= 0
        shared &= (nodes[:, level][:, None] == nodes[:, level][None, :]) & present[:, None]
        common += shared
    depths = lengths - 1
    dtype = _smallest_int_dtype(int(depths.max()))
    return (common - 1).astype(dtype), depths.astype(np.int64), inverse.ravel()


def _smallest_int_dtype(largest: int) -> type[np.signedinteger]:
    for dtype in (np.int8, np.int16, np.int32):
        if largest <= np.iinfo(dtype).max:
            return dtype
    return np.int64
