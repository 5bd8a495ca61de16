"""Blocked nearest neighbours, and neighbours under R from the traces, against dense answers;
the neighbour lift of an attribute."""

import numpy as np
import pytest

from losskernel.method import kernel as kernel_module
from losskernel.readings import neighbours


def dense_neighbours(kernel, k, excluded_edges=None):
    """The reference: full stable argsort of each masked row (equal values: lower index first)."""
    similarity = np.array(kernel, dtype=np.float64)
    np.fill_diagonal(similarity, -np.inf)
    if excluded_edges is not None:
        similarity[excluded_edges] = -np.inf
    k = min(k, len(similarity) - 1)
    indices = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return indices, np.isfinite(np.take_along_axis(similarity, indices, axis=1))


def symmetric_kernel(rng, num_inputs):
    noise = rng.normal(size=(num_inputs, num_inputs))
    return (noise + noise.T) / 2


@pytest.mark.parametrize("with_exclusions", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_blocked_neighbours_equal_the_dense_reference(rng, with_exclusions, dtype):
    kernel = symmetric_kernel(rng, 300).astype(dtype)
    excluded = rng.random((300, 300)) < 0.3 if with_exclusions else None
    indices, valid = neighbours.nearest_neighbours(kernel, 7, excluded, block_rows=64)
    expected_indices, expected_valid = dense_neighbours(kernel, 7, excluded)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(valid, expected_valid)
    assert valid.all()
    # sorted: the kernel value never increases along a row
    assert (np.diff(np.take_along_axis(kernel, indices, axis=1), axis=1) <= 0).all()


def test_ties_go_to_the_lower_index(rng):
    # every off-diagonal value equal: the neighbours are the k lowest other indices
    indices, valid = neighbours.nearest_neighbours(np.ones((6, 6)), 3, block_rows=4)
    np.testing.assert_array_equal(
        indices, [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2], [0, 1, 2], [0, 1, 2]])
    assert valid.all()
    # a handful of distinct values: ties inside the top k and across the cut, several blocks
    kernel = np.round(symmetric_kernel(rng, 200), 0)
    excluded = rng.random((200, 200)) < 0.2
    for edges in (None, excluded):
        indices, valid = neighbours.nearest_neighbours(kernel, 9, edges, block_rows=33)
        expected_indices, expected_valid = dense_neighbours(kernel, 9, edges)
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_array_equal(valid, expected_valid)


def test_nan_entries_count_as_excluded():
    kernel = np.array([[1.0, np.nan, 0.2], [np.nan, 1.0, 0.1], [0.2, 0.1, 1.0]])
    indices, valid = neighbours.nearest_neighbours(kernel, 2)
    np.testing.assert_array_equal(valid, [[True, False], [True, False], [True, True]])
    np.testing.assert_array_equal(indices[valid], [2, 2, 0, 1])


def planted_traces(rng, dtype):
    """3 chains x 40 draws x 257 inputs: random factor structure plus zero-variance columns.

    Column 5 is 0, column 100 is 2.0 and column 200 is -1.5 throughout (zero variance under both
    centrings); column 31 is 1, 2, 3 in the three chains (zero variance only per chain). The
    constants are exact in binary, so their centred columns are exactly 0.
    """
    factors = rng.normal(size=(3, 40, 6))
    loadings = rng.normal(size=(6, 257))
    losses = factors @ loadings + rng.normal(size=(3, 40, 257))
    losses[:, :, 5], losses[:, :, 100], losses[:, :, 200] = 0.0, 2.0, -1.5
    losses[:, :, 31] = np.array([1.0, 2.0, 3.0])[:, None]
    return losses.astype(dtype)


@pytest.mark.parametrize("centring", ["pooled", "per_chain"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_correlation_neighbours_equal_dense_R(rng, centring, dtype):
    losses = planted_traces(rng, dtype)
    labels = rng.integers(0, 5, size=257)
    same_label = labels[:, None] == labels[None, :]
    R = kernel_module.compute_kernel(losses, "correlation", centring)
    indices, similarity, valid = neighbours.correlation_neighbours(
        losses, 8, centring=centring, exclude_same=labels, block_rows=50)
    expected_indices, expected_valid = dense_neighbours(R, 8, same_label)

    # Index equality is well posed only if no two distinct values near the cut are closer than
    # float32 rounding; exact ties (the zero-variance columns, R = 0) are resolved by index.
    masked = np.where(same_label, -np.inf, R)
    top = -np.sort(-masked, axis=1)[:, :9]
    gaps = np.diff(top, axis=1)
    assert np.all((gaps == 0) | (np.abs(gaps) > 1e-5))

    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(valid, expected_valid)
    assert valid.all()
    np.testing.assert_allclose(similarity, np.take_along_axis(R, indices, axis=1), atol=1e-5)
    for zero_variance in (5, 100, 200) + ((31,) if centring == "per_chain" else ()):
        assert (similarity[zero_variance] == 0).all()
        candidates = np.flatnonzero(labels != labels[zero_variance])
        np.testing.assert_array_equal(indices[zero_variance], candidates[:8])


def test_fewer_candidates_than_k_are_flagged_invalid(rng):
    labels = np.array([0, 0, 0, 0, 1, 1])
    losses = rng.normal(size=(2, 10, 6))
    _, similarity, valid = neighbours.correlation_neighbours(
        losses, 3, exclude_same=labels, block_rows=4)
    # inputs 0-3 have two candidates (4 and 5); 4 and 5 have four
    np.testing.assert_array_equal(valid, [[True, True, False]] * 4 + [[True, True, True]] * 2)
    assert np.isneginf(similarity[~valid]).all()
    kernel = kernel_module.compute_kernel(losses)
    _, kernel_valid = neighbours.nearest_neighbours(kernel, 3, labels[:, None] == labels[None, :])
    np.testing.assert_array_equal(kernel_valid, valid)
    # k beyond N - 1 is cut to N - 1
    indices, _, valid = neighbours.correlation_neighbours(losses, 10)
    assert indices.shape == (6, 5) and valid.all()
    assert neighbours.nearest_neighbours(kernel, 10)[0].shape == (6, 5)


def test_blas_threads_are_restored(rng):
    from threadpoolctl import threadpool_info

    before = [pool["num_threads"] for pool in threadpool_info()]
    neighbours.correlation_neighbours(rng.normal(size=(2, 5, 20)), 3, threads=1)
    assert [pool["num_threads"] for pool in threadpool_info()] == before


def test_bad_arguments_are_refused(rng):
    losses = rng.normal(size=(2, 5, 20))
    with pytest.raises(ValueError, match="k must be"):
        neighbours.correlation_neighbours(losses, 0)
    with pytest.raises(ValueError, match="centring"):
        neighbours.correlation_neighbours(losses, 3, centring="median")
    with pytest.raises(ValueError, match="one label per input"):
        neighbours.correlation_neighbours(losses, 3, exclude_same=np.zeros(19))
    with pytest.raises(ValueError, match="N x N"):
        neighbours.nearest_neighbours(np.zeros((3, 4)), 2)


# neighbour lift ---------------------------------------------------------------------------


def block_kernel(groups, rng):
    same = (groups[:, None] == groups[None, :]).astype(float)
    noise = rng.normal(scale=0.05, size=same.shape)
    return same + (noise + noise.T) / 2


def test_neighbour_lift_of_perfect_clusters(rng):
    groups = np.repeat([0, 1, 2], [5, 7, 8])
    purity, chance, lift = neighbours.neighbour_lift(block_kernel(groups, rng), groups, k=4)
    assert purity == 1.0
    assert chance == pytest.approx((5 * 4 + 7 * 6 + 8 * 7) / (20 * 19))
    assert lift == pytest.approx(20 * 19 / (5 * 4 + 7 * 6 + 8 * 7))


def test_neighbour_lift_of_a_random_kernel_is_about_one(rng):
    noise = rng.normal(size=(300, 300))
    attribute = rng.integers(0, 3, 300)
    _, chance, lift = neighbours.neighbour_lift((noise + noise.T) / 2, attribute, k=10)
    assert chance == pytest.approx(1 / 3, abs=0.02)
    assert lift == pytest.approx(1.0, abs=0.15)


def test_excluded_edges_leave_chance_and_purity(rng):
    groups = np.repeat([0, 1, 2], 4)
    in_first = groups == 0
    excluded = np.outer(in_first, in_first)  # group 0 may not neighbour itself
    purity, chance, lift = neighbours.neighbour_lift(block_kernel(groups, rng), groups, k=3,
                                                     excluded_edges=excluded)
    # candidates: 12·11 - 4·3 = 120 pairs, 2 · 4·3 = 24 of them same-group; groups 1 and 2
    # keep pure neighbours (24 pairs), group 0 has none of its own left (12 pairs)
    assert chance == pytest.approx(24 / 120)
    assert purity == pytest.approx(24 / 36)
    assert lift == pytest.approx(10 / 3)


def test_neighbour_lift_is_undefined_without_same_attribute_candidates(rng):
    groups = np.repeat([0, 1], 5)
    excluded = groups[:, None] == groups[None, :]
    purity, chance, lift = neighbours.neighbour_lift(block_kernel(groups, rng), groups, k=3,
                                                     excluded_edges=excluded)
    assert purity == 0.0 and chance == 0.0
    assert np.isnan(lift)
