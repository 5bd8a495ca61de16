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
    with pytest.raises(ValueError, match="kernel must be 2 x 2"):
        hierarchy.taxonomic_lift(kernel, ["r>a", "r>b"], k=1)
    with pytest.raises(ValueError, match="no kNN edge"):
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
    assert values == hierarchy.hierarchy_tests(similarity, paths, 3, same_class, depth=1,
                                               permutations=500, seed=0)  # seeded


def test_class_similarity_is_the_mean_over_pairs_of_distinct_inputs():
    similarity = np.array([[9.0, 1.0, 2.0],
                           [1.0, 9.0, 4.0],
                           [2.0, 4.0, 9.0]])
    classes = np.array([0, 0, 1])
    means = hierarchy.class_similarity(similarity, classes, 2)
    # class 0 with itself: only the pair (0, 1), both ways; the diagonal never counts
    np.testing.assert_allclose(means, [[1.0, 3.0], [3.0, np.nan]])
