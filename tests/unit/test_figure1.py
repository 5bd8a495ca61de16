"""Figure 1's hierarchy reading and structure score on a planted kernel whose answers are
worked out by hand, with and without the same-class edges the paper's neighbour graph leaves out.

Six inputs of three classes, two per class, in the tree r > x > {a, b} and r > y > c:

    lca(a, b) = 1 (r > x),  lca(a, c) = lca(b, c) = 0 (r),  lca within a class = 2.

The similarity is 0.9 within a class, 0.5 between a and b, 0.2 between a and c and 0.1 between
b and c. With k = 1 and same-class pairs excluded, a's and b's nearest neighbours are of the
other class of x (lca 1) and c's are a's (lca 0): the mean edge depth is 4/6. Over the 24
ordered candidate pairs of different classes, 8 are a-b pairs (lca 1): chance is 8/24. So the
hierarchy lift is (4/6) / (8/24) = 2, and so is the lift at depth 1. Were same-class pairs
kept, every neighbour would be of its own class (lca 2) and chance 20/30: a lift of 3.

Rank correlation: the class similarities (a-b 0.5, a-c 0.2, b-c 0.1) against minus the tree
distances (2, 4, 4) have ranks (3, 2, 1) and (3, 1.5, 1.5): Spearman's rho = sqrt(3) / 2.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from losskernel.tasks import figure1, load_task

LABELS = np.array([0, 0, 1, 1, 2, 2])
PATHS = ["r>x>a", "r>x>a", "r>x>b", "r>x>b", "r>y>c", "r>y>c"]
CLASS_SIMILARITY = np.array([[0.9, 0.5, 0.2], [0.5, 0.9, 0.1], [0.2, 0.1, 0.9]])
SIMILARITY = CLASS_SIMILARITY[LABELS[:, None], LABELS[None, :]]
np.fill_diagonal(SIMILARITY, 1.0)
LIFT, LIFT_WITH_SAME_CLASS = 2.0, 3.0


def kernel(values: np.ndarray) -> xr.Dataset:
    obs_id = [f"x{i}" for i in range(len(LABELS))]
    return xr.Dataset({"kernel": (("obs_id", "obs_id_2"), values)},
                      coords={"obs_id": obs_id, "obs_id_2": obs_id, "label": ("obs_id", LABELS),
                              "wordnet_path": ("obs_id", PATHS)})


def test_structure_score_is_the_lift_without_same_class_edges():
    inputs = pd.DataFrame({"label": LABELS, "wordnet_path": PATHS})
    covariance = 2 * SIMILARITY  # the same neighbours as R
    for name, correlation in (("R", SIMILARITY), ("absR", -SIMILARITY), ("K", -SIMILARITY)):
        settings = {"knn_k": 1, "hierarchy": {"similarity": name}}
        assert figure1.structure_score(covariance, correlation, inputs, settings) == (
            pytest.approx(LIFT))
    pixels = {"knn_k": 1, "hierarchy": {"similarity": "pixels"}}
    with pytest.raises(ValueError, match=r"^analysis\.hierarchy\.similarity: the trajectory "
                                         r"scores a kernel similarity \(R, absR, K\), not "):
        figure1.structure_score(covariance, SIMILARITY, inputs, pixels)


def test_the_same_class_exclusion_is_what_makes_the_planted_lift_two():
    """The yardstick of the test above: the lift with every edge kept is 3, not 2."""
    from losskernel.readings.hierarchy import hierarchy_lift

    assert hierarchy_lift(SIMILARITY, PATHS, 1, None) == pytest.approx(
        (2.0, 20 / 30, LIFT_WITH_SAME_CLASS))


def test_score_hierarchy_scores_every_similarity_without_same_class_edges(rng):
    # the model confuses a and b most, then a and c, then b and c: the class similarities' order
    probabilities = np.array([[0.5, 0.4, 0.1], [0.4, 0.55, 0.05], [0.1, 0.05, 0.85]])[LABELS]
    features = xr.Dataset(
        {name: (("obs_id", f"{name}_dim"), rng.normal(size=(len(LABELS), 3)))
         for name in figure1.BASELINE_SIMILARITIES}
        | {"probabilities": (("obs_id", "class"), probabilities)},
        coords={"obs_id": [f"x{i}" for i in range(len(LABELS))]})
    settings = {"knn_k": 1, "hierarchy": {"similarity": "absR", "depth": 1, "permutations": 20,
                                          "seed": 0}}
    scored = figure1.score_hierarchy(load_task("fashion"), settings, kernel(SIMILARITY),
                                     kernel(2 * SIMILARITY), features)
    values = dict(zip(scored["metrics"]["metric"], scored["metrics"]["value"], strict=True))
    assert list(values) == list(figure1.METRICS)
    assert (values["edge_lca_depth"], values["chance_lca_depth"]) == pytest.approx((4 / 6, 1 / 3))
    for name in figure1.KERNEL_SIMILARITIES:
        assert values[f"hierarchy_lift_{name}"] == pytest.approx(LIFT)
        assert values[f"depth_lift_{name}"] == pytest.approx(LIFT)
        assert values[f"rank_correlation_{name}"] == pytest.approx(math.sqrt(3) / 2)
    assert values["hierarchy_lift"] == values["hierarchy_lift_absR"]  # the headline's
    # branches at depth 1: x holds a and b (0.5), c is alone (a-c 0.2, b-c 0.1); K = 2 R
    for name, scale in (("R", 1), ("absR", 1), ("K", 2)):
        assert values[f"within_branch_{name}"] == pytest.approx(0.5 * scale)
        assert values[f"across_branch_{name}"] == pytest.approx(0.15 * scale)
        assert values[f"confusion_correlation_{name}"] == pytest.approx(1.0)
    for baseline in figure1.BASELINE_SIMILARITIES:  # CKA ignores scale; R ≥ 0 here, so |R| = R
        assert values[f"cka_K_{baseline}"] == pytest.approx(values[f"cka_R_{baseline}"])
        assert values[f"cka_absR_{baseline}"] == pytest.approx(values[f"cka_R_{baseline}"])
        assert 0 < values[f"cka_R_{baseline}"] <= 1
    assert set(scored["lift"]["similarity"]) == set(figure1.SIMILARITIES)
    with pytest.raises(ValueError, match=r"the input features are not of the kernel's inputs "
                                         r"\(in its order\); make them again"):
        figure1.score_hierarchy(load_task("fashion"), settings, kernel(SIMILARITY),
                                kernel(SIMILARITY), features.isel(obs_id=slice(None, None, -1)))
