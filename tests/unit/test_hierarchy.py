"""Kernels against a class taxonomy: LCA depths, tree distances and taxonomic lift by hand,
and on the real WordNet tree."""

from pathlib import Path

import nltk
import numpy as np
import pandas as pd
import pytest
from tests.needs import require

from losskernel.readings import hierarchy

# A hand-made tree; depth in brackets. a2 is both a class and the parent of class x, and a1 and
# a10 share the characters "a1" but not a node.
#
#   r (0) ─┬─ a (1) ─┬─ a1 (2)
#          │         ├─ a10 (2)
#          │         └─ a2 (2) ── x (3)
#          └─ b (1)
A1, A10, A2, X, B = "r>a>a1", "r>a>a10", "r>a>a2", "r>a>a2>x", "r>b"
HAND_PATHS = [A1, A2, X, B, A10]
HAND_LCA = [
    [2, 1, 1, 0, 1],
    [1, 2, 2, 0, 1],
    [1, 2, 3, 0, 1],
    [0, 0, 0, 1, 0],
    [1, 1, 1, 0, 2],
]
HAND_DISTANCE = [  # depth_i + depth_j - 2 lca_ij, counted as edges on the drawing
    [0, 2, 3, 3, 2],
    [2, 0, 1, 3, 2],
    [3, 1, 0, 4, 3],
    [3, 3, 4, 0, 3],
    [2, 2, 3, 3, 0],
]


def test_lca_depth_and_tree_distance_on_a_hand_made_tree():
    lca = hierarchy.lca_depth_matrix(HAND_PATHS)
    np.testing.assert_array_equal(lca, HAND_LCA)
    assert lca.dtype == np.int8
    np.testing.assert_array_equal(hierarchy.tree_distance_matrix(HAND_PATHS), HAND_DISTANCE)
    assert hierarchy.tree_distance_matrix(HAND_PATHS).dtype == np.int8


def test_repeated_inputs_are_indexed_back_in_input_order():
    order = [2, 0, 2, 3, 0, 4]  # x, a1, x, b, a1, a10
    paths = [HAND_PATHS[i] for i in order]
    np.testing.assert_array_equal(hierarchy.lca_depth_matrix(paths),
                                  np.asarray(HAND_LCA)[np.ix_(order, order)])
    distance = hierarchy.tree_distance_matrix(paths)
    np.testing.assert_array_equal(distance, np.asarray(HAND_DISTANCE)[np.ix_(order, order)])
    assert distance[0, 2] == 0  # two inputs of the same class


def test_paths_must_share_the_root_and_name_every_node():
    with pytest.raises(ValueError, match="same root"):
        hierarchy.lca_depth_matrix(["r>a", "s>a"])
    with pytest.raises(ValueError, match="empty node"):
        hierarchy.lca_depth_matrix(["r>a", "r>>a"])


def test_paths_check_the_empty_input():
    with pytest.raises(ValueError, match=r"^paths is empty$"):
        hierarchy.lca_depth_matrix([])


def test_lca_is_the_common_prefix_even_when_a_node_has_two_parents():
    # x sits under both a and b (as WordNet synsets can): the paths share only the root.
    paths = ["r>a>x", "r>b>x"]
    np.testing.assert_array_equal(hierarchy.lca_depth_matrix(paths), [[2, 0], [0, 2]])
    np.testing.assert_array_equal(hierarchy.tree_distance_matrix(paths), [[0, 4], [4, 0]])


def test_a_single_path_of_depth_127_is_read_in_int8():
    path = ">".join(["r"] + [f"n{level}" for level in range(1, 128)])  # 128 nodes, depth 127
    lca = hierarchy.lca_depth_matrix([path])
    np.testing.assert_array_equal(lca, [[127]])
    assert lca.dtype == np.int8


# Six inputs, two per class; classes a1, a2 (LCA a, depth 1) and b>b1 (LCA r with both).
LIFT_PATHS = ["r>a>a1", "r>a>a1", "r>a>a2", "r>a>a2", "r>b>b1", "r>b>b1"]
SAME_CLASS = np.equal.outer(LIFT_PATHS, LIFT_PATHS)


def test_taxonomic_lift_by_hand_with_same_class_edges_removed():
    # Kernel = LCA depth: each a-input's nearest other-class input is in the other a-class
    # (LCA depth 1); b-inputs only have a-inputs left (LCA depth 0).
    kernel = hierarchy.lca_depth_matrix(LIFT_PATHS).astype(float)
    table = hierarchy.taxonomic_lift(kernel, LIFT_PATHS, k=1, excluded_edges=SAME_CLASS)
    # Candidates: 6·5 ordered pairs minus 6 same-class = 24; a1↔a2 pairs: 2·2·2 = 8 meet at
    # depth 1, none deeper. Edges: 6, the 4 from a-inputs meet at depth 1.
    expected = pd.DataFrame({
        "depth": [1, 2],
        "purity": [4 / 6, 0.0],
        "chance": [8 / 24, 0.0],
        "lift": [2.0, np.nan],
        "edges": 6,
        "candidate_pairs": 24,
    })
    pd.testing.assert_frame_equal(table, expected)
    assert hierarchy.hierarchy_lift(kernel, LIFT_PATHS, 1, SAME_CLASS) == pytest.approx(
        (4 / 6, 8 / 24, 2.0))


def test_taxonomic_lift_by_hand_without_exclusions():
    # Now every input's nearest neighbour is its same-class twin, meeting at depth 2.
    kernel = hierarchy.lca_depth_matrix(LIFT_PATHS).astype(float)
    table = hierarchy.taxonomic_lift(kernel, LIFT_PATHS, k=1, depths=[0, 1, 2, 5])
    # Candidates: 30; depth >= 1: 8 a1↔a2 + 6 same-class = 14; depth >= 2: the 6 same-class.
    np.testing.assert_allclose(table["purity"], [1, 1, 1, 0])
    np.testing.assert_allclose(table["chance"], [1, 14 / 30, 6 / 30, 0])
    np.testing.assert_allclose(table["lift"], [1, 30 / 14, 5, np.nan])
    assert (table["candidate_pairs"] == 30).all()
    assert hierarchy.hierarchy_lift(kernel, LIFT_PATHS, 1) == pytest.approx(
        (2.0, (8 * 1 + 6 * 2) / 30, 2.0 / (20 / 30)))


def test_taxonomic_lift_with_exclusions_only_between_the_root_branches():
    # a-inputs and b-inputs may not neighbour: every excluded pair meets at the root (depth 0).
    # Each input's nearest candidate is its twin (depth 2). Candidates: 30 - 16 = 14, of which
    # the 8 a1<->a2 pairs meet at depth 1 and the 6 twin pairs at depth 2.
    kernel = hierarchy.lca_depth_matrix(LIFT_PATHS).astype(float)
    on_a = np.array([path.startswith("r>a") for path in LIFT_PATHS])
    across = on_a[:, None] != on_a[None, :]
    table = hierarchy.taxonomic_lift(kernel, LIFT_PATHS, k=1, excluded_edges=across)
    np.testing.assert_allclose(table["purity"], [1, 1])
    np.testing.assert_allclose(table["chance"], [1, 6 / 14])
    assert (table["candidate_pairs"] == 14).all()


def test_taxonomic_lift_at_and_above_the_root_is_one_and_depths_come_back_as_int64():
    kernel = hierarchy.lca_depth_matrix(LIFT_PATHS).astype(float)
    depths = np.array([-1, 0], dtype=np.int8)  # e.g. read off an LCA matrix
    table = hierarchy.taxonomic_lift(kernel, LIFT_PATHS, k=1, depths=depths)
    expected = pd.DataFrame({"depth": np.array([-1, 0], dtype=np.int64), "purity": 1.0,
                             "chance": 1.0, "lift": 1.0, "edges": 6, "candidate_pairs": 30})
    pd.testing.assert_frame_equal(table, expected)


def test_hierarchy_lift_is_nan_when_every_candidate_meets_at_the_root():
    # Two classes on different root branches: every pair, edge or candidate, has LCA depth 0.
    mean_edges, mean_candidates, ratio = hierarchy.hierarchy_lift(np.zeros((2, 2)),
                                                                  ["r>a", "r>b"], k=1)
    assert (mean_edges, mean_candidates) == (0.0, 0.0)
    assert np.isnan(ratio)


# Same-class edges removed and input 0 (a1) left with input 2 (a2) as its only candidate, so
# with k = 2 input 0 has one real neighbour and one placeholder slot, which is no edge.
SHORT_OF_K = SAME_CLASS.copy()
SHORT_OF_K[0, [3, 4, 5]] = True


def test_taxonomic_lift_counts_no_edge_in_the_placeholder_slots():
    kernel = hierarchy.lca_depth_matrix(LIFT_PATHS).astype(float)
    table = hierarchy.taxonomic_lift(kernel, LIFT_PATHS, k=2, excluded_edges=SHORT_OF_K)
    # Edges: 0 -> 2 (depth 1); 1 -> 2, 3 and 2, 3 -> 0, 1 (depth 1); 4, 5 -> 0, 1 (depth 0):
    # 11 edges, 7 at depth 1. Candidates: 30 - 6 same-class - 3 more from input 0 (0 -> 3 at
    # depth 1, 0 -> 4, 5 at depth 0) = 21, the 8 a1<->a2 pairs less 0 -> 3 = 7 at depth 1.
    expected = pd.DataFrame({
        "depth": [1, 2],
        "purity": [7 / 11, 0.0],
        "chance": [7 / 21, 0.0],
        "lift": [21 / 11, np.nan],
        "edges": 11,
        "candidate_pairs": 21,
    })
    pd.testing.assert_frame_equal(table, expected)
    assert hierarchy.hierarchy_lift(kernel, LIFT_PATHS, 2, SHORT_OF_K) == pytest.approx(
        (7 / 11, 7 / 21, 21 / 11))


def test_hierarchy_tests_count_no_edge_in_the_placeholder_slots():
    # The edges and candidates of the test above, by class (a1, a2, b1): edges a1 -> a2: 3,
    # a2 -> a1: 4, b1 -> a1: 4; candidates a1 -> a2: 3, a2 -> a1: 4, a1 -> b1: 2, the rest 4.
    kernel = hierarchy.lca_depth_matrix(LIFT_PATHS).astype(float)
    values = hierarchy.hierarchy_tests(kernel, LIFT_PATHS, 2, SHORT_OF_K, depth=1,
                                       permutations=0, seed=0)
    assert values == pytest.approx({
        "edge_lca_depth": 7 / 11, "chance_lca_depth": 7 / 21,
        "hierarchy_lift": 21 / 11, "depth_lift": 21 / 11,
        # class means 1 (a1, a2) and 0 (a with b) against tree distances 2 and 4: same order
        "rank_correlation": 1.0,
        "hierarchy_lift_p": 1.0, "depth_lift_p": 1.0, "rank_correlation_p": 1.0,
    })


def test_taxonomy_reading_is_the_lift_table_and_its_summary():
    kernel = hierarchy.lca_depth_matrix(LIFT_PATHS).astype(np.float32)
    table, values = hierarchy.taxonomy(kernel, np.array(LIFT_PATHS), 1, SAME_CLASS)
    pd.testing.assert_frame_equal(table, hierarchy.taxonomic_lift(kernel, LIFT_PATHS, 1,
                                                                  SAME_CLASS))
    assert list(values) == ["hierarchy_lift", "edge_lca_depth", "chance_lca_depth"]
    assert list(values.values()) == pytest.approx([2.0, 4 / 6, 8 / 24])


def test_hierarchy_lift_is_the_chance_weighted_mean_of_the_lifts(rng):
    paths = np.repeat(HAND_PATHS, 4)
    noise = rng.normal(size=(len(paths), len(paths)))
    kernel = noise + noise.T
    excluded = np.equal.outer(paths, paths)
    table = hierarchy.taxonomic_lift(kernel, paths, k=3, excluded_edges=excluded)
    shared = table["chance"] > 0
    weighted = np.average(table["lift"][shared], weights=table["chance"][shared])
    assert hierarchy.hierarchy_lift(kernel, paths, 3, excluded)[2] == pytest.approx(weighted)


def test_taxonomic_lift_checks_its_inputs():
    kernel = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"kernel must be 2 x 2 \(one row per path\), "
                                         r"got shape \(3, 3\)"):
        hierarchy.taxonomic_lift(kernel, ["r>a", "r>b"], k=1)
    with pytest.raises(ValueError, match=r"excluded_edges must be 2 x 2, got shape \(3, 3\)"):
        hierarchy.taxonomic_lift(np.zeros((2, 2)), ["r>a", "r>b"], k=1,
                                 excluded_edges=np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        hierarchy.taxonomic_lift(np.zeros((2, 2)), ["r>a", "r>b"], k=0)
    with pytest.raises(ValueError, match=r"^no kNN edge is left: every candidate neighbour is "
                                         r"excluded$"):
        hierarchy.taxonomic_lift(kernel, ["r>a"] * 3, k=1, excluded_edges=np.ones((3, 3), bool))


# The acceptance criterion: on the real WordNet tree, a kernel planted from the tree gives lift
# well above 1 at deep levels, and a random kernel gives lift 1 at every depth.


@pytest.fixture(scope="module")
def imagenet_paths(tmp_path_factory):
    """Chosen WordNet paths of all 1000 ImageNet classes, from Debian's WordNet copied to tmp."""
    from losskernel.tasks import wordnet

    require("wordnet")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nltk.data, "path", [])  # ignore any nltk corpus of this machine
        reader, _ = wordnet.load_wordnet(Path(tmp_path_factory.mktemp("nltk_data")))
        table = wordnet.hierarchy_table(reader, wordnet.imagenet1k_classes())
    return table["wordnet_path"].to_numpy()


def sampled_inputs(all_paths, seed, num_classes=80, per_class=6):
    """``per_class`` "images" of each of ``num_classes`` random classes, and same-class edges."""
    classes = np.random.default_rng(seed).choice(len(all_paths), num_classes, replace=False)
    paths = np.repeat(all_paths[classes], per_class)
    return paths, np.equal.outer(paths, paths)


K = 10


def departures_from_chance(table):
    """Per informative depth: does purity differ from chance by more than 4 standard errors?

    A random kernel's neighbours are a uniform draw from each input's candidates, so the count
    of edges meeting at depth >= d is binomial(edges, chance) up to a design effect of at most 2
    (the kernel is symmetric, so an edge i->j makes j->i more likely and the pair counts twice).
    Only depths where that count is large enough (expected >= 10) for the normal approximation
    are judged; deeper levels hold a handful of pairs and carry no lift information at this size.
    """
    chance, edges = table["chance"], table["edges"]
    informative = chance * edges >= 10
    standard_error = np.sqrt(2 * chance * (1 - chance) / edges)
    return ((table["purity"] - chance).abs() > 4 * standard_error)[informative]


def test_planted_kernel_has_lift_well_above_one_at_deep_levels(imagenet_paths):
    paths, same_class = sampled_inputs(imagenet_paths, seed=2024)
    lca = hierarchy.lca_depth_matrix(paths).astype(float)
    noise = np.random.default_rng(1).normal(size=lca.shape)
    # One LCA level is 1/max ≈ 0.06 of kernel; the noise (sd 0.02) only reorders near-ties.
    kernel = lca / lca.max() + 0.02 * (noise + noise.T) / 2
    table = hierarchy.taxonomic_lift(kernel, paths, K, excluded_edges=same_class)
    assert (table["lift"].dropna() >= 1).all()
    deep = (table["chance"] > 0) & (table["chance"] < 0.5)  # below the trunk most pairs share
    assert deep.sum() >= 8
    assert (table["lift"][deep] > 2).all(), table
    # The check that passes the random kernel below flags every informative deep level here.
    departs = departures_from_chance(table)
    assert departs[deep[departs.index]].all()
    assert hierarchy.hierarchy_lift(kernel, paths, K, same_class)[2] > 1.5


def test_random_kernel_has_lift_one_at_every_depth(imagenet_paths):
    paths, same_class = sampled_inputs(imagenet_paths, seed=2024)
    noise = np.random.default_rng(2).normal(size=same_class.shape)
    kernel = (noise + noise.T) / 2
    table = hierarchy.taxonomic_lift(kernel, paths, K, excluded_edges=same_class)
    edges = table["edges"].iloc[0]
    assert edges == len(paths) * K
    departs = departures_from_chance(table)
    assert len(departs) >= 10
    assert not departs.any(), table
    assert (table["purity"][table["chance"] == 0] == 0).all()
    # The summary ratio, with the same design effect: within 4 standard errors of 1.
    lca = hierarchy.lca_depth_matrix(paths)[~same_class & ~np.eye(len(paths), dtype=bool)]
    ratio_se = np.sqrt(2) * lca.std() / (np.sqrt(edges) * lca.mean())
    ratio = hierarchy.hierarchy_lift(kernel, paths, K, same_class)[2]
    assert ratio == pytest.approx(1.0, abs=4 * ratio_se)


# hierarchy_tests: four classes in two pairs of siblings, ten inputs each ---------------------
PAIRED_PATHS = ["r>a>x", "r>a>y", "r>b>z", "r>b>w"]
PAIRED_CLASSES = np.repeat(np.arange(4), 10)
PAIRED_INPUT_PATHS = [PAIRED_PATHS[c] for c in PAIRED_CLASSES]
PAIRED_SAME_CLASS = PAIRED_CLASSES[:, None] == PAIRED_CLASSES[None, :]


def paired_similarity(rng: np.random.Generator, siblings_close: bool) -> np.ndarray:
    """Correlations of inputs whose features share a component with the sibling class
    (``siblings_close``) or with no class."""
    features = rng.normal(size=(40, 6))
    if siblings_close:
        features[:20, 0] += 10.0  # classes x and y (under a) share a direction
        features[20:, 1] += 10.0  # classes z and w (under b) share another
    return np.corrcoef(features)


def test_hierarchy_tests_agree_with_the_lift_and_have_the_exact_permutation_p_value(rng):
    similarity = paired_similarity(rng, siblings_close=True)
    paths, same_class = PAIRED_INPUT_PATHS, PAIRED_SAME_CLASS
    values = hierarchy.hierarchy_tests(similarity, paths, 3, same_class, depth=1,
                                       permutations=3000, seed=0)
    edge_depth, chance_depth, lift = hierarchy.hierarchy_lift(similarity, paths, 3, same_class)
    table = hierarchy.taxonomic_lift(similarity, paths, 3, same_class, depths=[1])
    assert values["hierarchy_lift"] == pytest.approx(lift)
    assert values["edge_lca_depth"] == pytest.approx(edge_depth)
    assert values["chance_lca_depth"] == pytest.approx(chance_depth)
    assert values["depth_lift"] == pytest.approx(table["lift"].iloc[0])
    # every cross-class neighbour is the sibling class: purity 1 at depth 1 against chance 1/3
    assert values["depth_lift"] == pytest.approx(3.0)
    # shuffling 4 classes over the tree keeps the sibling pairs in 8 of 24 permutations, so the
    # p-value of the best possible lift is 1/3 (up to the Monte-Carlo error of 3000 draws)
    assert values["depth_lift_p"] == pytest.approx(1 / 3, abs=0.03)
    assert values["rank_correlation"] > 0.8


def test_hierarchy_tests_of_a_similarity_without_structure_are_not_significant(rng):
    similarity = paired_similarity(rng, siblings_close=False)
    paths, same_class = PAIRED_INPUT_PATHS, PAIRED_SAME_CLASS
    values = hierarchy.hierarchy_tests(similarity, paths, 3, same_class, depth=1,
                                       permutations=500, seed=0)
    assert values["depth_lift"] < 1.6 and values["depth_lift_p"] > 0.1


def test_hierarchy_tests_draw_the_same_permutations_from_the_same_seed(rng):
    # With sibling structure the p-values are near 1/3, not at an end, so they move with the
    # permutations drawn: equal p-values mean the same draws.
    similarity = paired_similarity(rng, siblings_close=True)
    values = [hierarchy.hierarchy_tests(similarity, PAIRED_INPUT_PATHS, 3, PAIRED_SAME_CLASS,
                                        depth=1, permutations=300, seed=7) for _ in range(2)]
    assert 0.2 < values[0]["depth_lift_p"] < 0.5
    assert values[0] == values[1]


def test_hierarchy_tests_by_hand_on_classes_of_unequal_depth():
    # One input per class of the hand-made tree, similarity = minus the tree distance. k = 1
    # neighbours (ties to the lower index): a1 -> a2 (LCA depth 1), a2 -> x (2), x -> a2 (2),
    # b -> a1 (0), a10 -> a1 (1): mean 6/5. The 20 ordered pairs of HAND_LCA sum to 14: mean
    # 7/10. At depth 2: 2 of 5 edges against the 2 of 20 pairs a2 <-> x, a lift of 4.
    similarity = -np.asarray(HAND_DISTANCE, dtype=float)
    values = hierarchy.hierarchy_tests(similarity, HAND_PATHS, 1, None, depth=2,
                                       permutations=0, seed=0)
    assert values == pytest.approx({
        "edge_lca_depth": 6 / 5, "chance_lca_depth": 7 / 10,
        "hierarchy_lift": 12 / 7, "depth_lift": 4.0,
        "rank_correlation": 1.0,  # the class means order the pairs exactly as the tree does
        "hierarchy_lift_p": 1.0, "depth_lift_p": 1.0, "rank_correlation_p": 1.0,
    })


def test_hierarchy_tests_of_two_sibling_classes_have_known_p_values():
    # Swapping the two classes leaves the LCA table as it is, so every permutation ties the
    # lift: p = (1 + 3) / (1 + 3). No pair of distinct classes meets at depth 2 and one pair of
    # classes has no rank correlation: both NaN, which no permutation reaches: p = 1 / 4.
    paths = ["r>a>x", "r>a>x", "r>a>y", "r>a>y"]
    similarity = np.arange(16.0).reshape(4, 4)
    same_class = np.equal.outer(paths, paths)
    values = hierarchy.hierarchy_tests(similarity, paths, 1, same_class, depth=2,
                                       permutations=3, seed=0)
    assert values == pytest.approx({
        "edge_lca_depth": 1.0, "chance_lca_depth": 1.0,
        "hierarchy_lift": 1.0, "hierarchy_lift_p": 1.0,
        "depth_lift": np.nan, "depth_lift_p": 1 / 4,
        "rank_correlation": np.nan, "rank_correlation_p": 1 / 4,
    }, nan_ok=True)


def test_hierarchy_tests_need_one_edge_and_k_at_least_one():
    paths = ["r>a>x", "r>a>y"]
    one_way = np.array([[False, False], [True, False]])  # input 1 has no candidate left
    values = hierarchy.hierarchy_tests(np.zeros((2, 2)), paths, 1, one_way, depth=1,
                                       permutations=0, seed=0)
    assert (values["edge_lca_depth"], values["chance_lca_depth"]) == (1.0, 1.0)  # 0 -> 1
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        hierarchy.hierarchy_tests(np.zeros((2, 2)), paths, 0, None, depth=1,
                                  permutations=0, seed=0)
    with pytest.raises(ValueError, match=r"^no kNN edge is left: every candidate neighbour is "
                                         r"excluded$"):
        hierarchy.hierarchy_tests(np.zeros((2, 2)), paths, 1, np.ones((2, 2), bool), depth=1,
                                  permutations=0, seed=0)


def test_class_similarity_is_the_mean_over_pairs_of_distinct_inputs():
    similarity = np.array([[9.0, 1.0, 2.0],
                           [1.0, 9.0, 4.0],
                           [2.0, 4.0, 9.0]])
    classes = np.array([0, 0, 1])
    means = hierarchy.class_similarity(similarity, classes, 2)
    # class 0 with itself: only the pair (0, 1), both ways; the diagonal never counts
    np.testing.assert_allclose(means, [[1.0, 3.0], [3.0, np.nan]])


def test_class_similarity_of_single_inputs_is_the_similarity_itself():
    similarity = np.array([[9.0, 1.0, 2.0],
                           [1.0, 9.0, 4.0],
                           [2.0, 4.0, 9.0]])
    means = hierarchy.class_similarity(similarity, np.array([0, 1, 2]), 3)
    # one pair per pair of classes; a class of one input has no pair with itself
    np.testing.assert_allclose(means, [[np.nan, 1.0, 2.0], [1.0, np.nan, 4.0], [2.0, 4.0, np.nan]])


def test_class_similarity_of_a_boolean_similarity_is_the_share_of_linked_pairs():
    linked = np.array([[True, True, False],
                       [True, True, True],
                       [False, True, True]])
    means = hierarchy.class_similarity(linked, np.array([0, 0, 1]), 2)
    # class 0: its one pair is linked; 0 with 1: one of the two pairs (1, 2) is linked
    np.testing.assert_allclose(means, [[1.0, 0.5], [0.5, np.nan]])


def test_branch_contrast_averages_the_class_means_within_and_across_branches():
    # Classes x, y under branch a and z under b (branch = the node at depth 1), two inputs
    # each. The similarity is a class-by-class table: S̄_xy = 0.5 within branch a; S̄_xz = -1,
    # S̄_yz = -3 across. Within-class values (2.0) and the diagonal never count.
    paths = ["r>a>x", "r>a>x", "r>a>y", "r>a>y", "r>b>z", "r>b>z"]
    table = {("x", "y"): 0.5, ("x", "z"): -1.0, ("y", "z"): -3.0}
    leaf = [path[-1] for path in paths]
    similarity = np.array([[2.0 if a == b else table.get((a, b), table.get((b, a), 0.0))
                            for b in leaf] for a in leaf])
    np.fill_diagonal(similarity, 99.0)
    within, across = hierarchy.branch_contrast(similarity, paths, depth=1)
    assert (within, across) == pytest.approx((0.5, -2.0))
    # at depth 2 every pair of distinct classes lies in different branches
    within, across = hierarchy.branch_contrast(similarity, paths, depth=2)
    assert np.isnan(within) and across == pytest.approx((0.5 - 1.0 - 3.0) / 3)


def test_soft_confusion_is_the_symmetrized_mean_probability_of_the_other_class():
    # class 0 puts 0.2 and 0.4 on class 1 (mean 0.3); class 1 puts 0.1 on class 0.
    probabilities = np.array([[0.8, 0.2, 0.0], [0.6, 0.4, 0.0], [0.1, 0.9, 0.0],
                              [0.0, 0.5, 0.5]])
    labels = np.array([0, 0, 1, 2])
    confusion = hierarchy.soft_confusion(probabilities, labels, 3)
    assert confusion[0, 1] == confusion[1, 0] == pytest.approx((0.3 + 0.1) / 2)
    assert confusion[1, 2] == pytest.approx((0.0 + 0.5) / 2)
    assert confusion[0, 0] == pytest.approx(0.7) and np.allclose(confusion, confusion.T)


def test_confusion_correlation_is_the_rank_correlation_over_class_pairs():
    # Three classes, one input each: the class means are the similarity's entries. The
    # confusions order the pairs (0,1) > (0,2) > (1,2); a similarity ordering them the same way
    # has ρ = 1, the reverse ρ = -1. A class without inputs drops its pairs.
    confusion = np.array([[0, 0.3, 0.2], [0.3, 0, 0.1], [0.2, 0.1, 0]])
    labels = np.array([0, 1, 2])
    similar = np.array([[1, 5, 3], [5, 1, 2], [3, 2, 1]], dtype=float)
    assert hierarchy.confusion_correlation(similar, labels, confusion) == pytest.approx(1.0)
    assert hierarchy.confusion_correlation(-similar, labels, confusion) == pytest.approx(-1.0)
    four = np.pad(confusion, ((0, 1), (0, 1)), constant_values=0.05)
    assert hierarchy.confusion_correlation(similar, labels, four) == pytest.approx(1.0)
    assert np.isnan(hierarchy.confusion_correlation(similar[:2, :2], labels[:2], confusion))
