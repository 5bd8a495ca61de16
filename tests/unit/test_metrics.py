import numpy as np
import pytest

from losskernel import metrics


def planted_kernel(rng, per_group: int = 50, strength: float = 0.5):
    groups = np.repeat(["add", "div"], per_group)
    same = (groups[:, None] == groups[None, :]).astype(float)
    noise = rng.normal(scale=0.05, size=same.shape)
    kernel = strength * same + (noise + noise.T) / 2
    np.fill_diagonal(kernel, 1.0)
    return kernel, groups


def test_block_structured_kernel_separates_perfectly(rng):
    kernel, groups = planted_kernel(rng)
    assert metrics.pairwise_separation_auc(kernel, groups) == pytest.approx(1.0)
    auc, scores = metrics.knn_vote_auc(kernel, groups, k=10)
    assert auc == pytest.approx(1.0)
    np.testing.assert_array_equal(scores, (groups == "add").astype(float))


def test_random_kernel_does_not_separate(rng):
    noise = rng.normal(size=(200, 200))
    kernel = (noise + noise.T) / 2
    groups = np.repeat(["add", "div"], 100)
    assert metrics.pairwise_separation_auc(kernel, groups) == pytest.approx(0.5, abs=0.02)
    assert metrics.knn_vote_auc(kernel, groups, k=10)[0] == pytest.approx(0.5, abs=0.1)


def test_excluded_edges_are_never_neighbours(rng):
    kernel, groups = planted_kernel(rng)
    excluded = groups[:, None] == groups[None, :]  # forbid every same-group neighbour
    indices, valid = metrics.nearest_neighbours(kernel, k=5, excluded_edges=excluded)
    assert valid.all()
    assert (groups[indices] != groups[:, None]).all()
    assert metrics.knn_vote_auc(kernel, groups, k=5, excluded_edges=excluded)[0] == 0.0


def test_block_means(rng):
    kernel, groups = planted_kernel(rng, strength=0.5)
    means = metrics.block_means(kernel, groups)
    assert means["within_add"] == pytest.approx(0.5, abs=0.01)
    assert means["within"] == pytest.approx(0.5, abs=0.01)
    assert means["cross"] == pytest.approx(0.0, abs=0.01)


def test_linear_cka_known_answers(rng):
    features = rng.normal(size=(30, 5))
    kernel = features @ features.T
    assert metrics.linear_cka(kernel, kernel) == pytest.approx(1.0)
    assert metrics.linear_cka(kernel, 3.0 * kernel + 2.0) == pytest.approx(1.0)
    other = rng.normal(size=(30, 5))
    value = metrics.linear_cka(kernel, other @ other.T)
    assert 0 < value < 0.6


def test_cross_group_z_is_small_for_independent_groups_and_large_for_coupled(rng):
    independent = rng.normal(size=(4, 1000, 6))
    group_a, group_b = np.arange(6) < 3, np.arange(6) >= 3
    _, _, z = metrics.cross_group_covariance_z(independent, group_a, group_b, 10)
    assert abs(z) < 3
    coupled = independent + rng.normal(size=(4, 1000, 1))  # a common mode shared by all inputs
    covariance, _, z = metrics.cross_group_covariance_z(coupled, group_a, group_b, 10)
    assert covariance == pytest.approx(1.0, abs=0.1)
    assert z > 10
