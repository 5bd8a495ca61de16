"""Task separation readings against planted kernels and traces with known answers."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from losskernel.method.kernel import compute_kernel
from losskernel.readings import separation


def planted_kernel(rng, per_group: int = 50, strength: float = 0.5):
    groups = np.repeat(["add", "div"], per_group)
    same = (groups[:, None] == groups[None, :]).astype(float)
    noise = rng.normal(scale=0.05, size=same.shape)
    kernel = strength * same + (noise + noise.T) / 2
    np.fill_diagonal(kernel, 1.0)
    return kernel, groups


def test_block_structured_kernel_separates_perfectly(rng):
    kernel, groups = planted_kernel(rng)
    assert separation.pairwise_separation_auc(kernel, groups) == pytest.approx(1.0)
    auc, scores = separation.knn_vote_auc(kernel, groups, k=10)
    assert auc == pytest.approx(1.0)
    np.testing.assert_array_equal(scores, (groups == "add").astype(float))


def test_random_kernel_does_not_separate(rng):
    noise = rng.normal(size=(200, 200))
    kernel = (noise + noise.T) / 2
    groups = np.repeat(["add", "div"], 100)
    assert separation.pairwise_separation_auc(kernel, groups) == pytest.approx(0.5, abs=0.02)
    assert separation.knn_vote_auc(kernel, groups, k=10)[0] == pytest.approx(0.5, abs=0.1)


def test_pairwise_auc_of_a_hand_kernel_scores_only_pairs_i_below_j():
    """Same-group pairs 0.9 and 0.1 against cross pairs 0.5, 0.2, 0.6, 0.0: 5 of 8 orderings
    right; the diagonal (1.0, same group) is no pair."""
    kernel = np.array([[1.0, 0.9, 0.5, 0.2],
                       [0.9, 1.0, 0.6, 0.0],
                       [0.5, 0.6, 1.0, 0.1],
                       [0.2, 0.0, 0.1, 1.0]])
    groups = np.array(["a", "a", "b", "b"])
    assert separation.pairwise_separation_auc(kernel, groups) == 5 / 8


def test_knn_vote_auc_refuses_other_than_two_groups():
    kernel = np.eye(3)
    with pytest.raises(ValueError, match=r"needs exactly two groups, got \[.*'a'.*'b'.*'c'.*\]"):
        separation.knn_vote_auc(kernel, np.array(["a", "b", "c"]), k=1)


def constant_input_kernel():
    """Groups a, a, b, b, b; input 4's losses never varied (a zero row and column of R), and
    every other input is anti-correlated with input 0, so R = 0 would be its nearest value."""
    kernel = np.array([[1.0, -0.5, -0.6, -0.7, 0.0],
                       [-0.5, 1.0, 0.3, 0.2, 0.0],
                       [-0.6, 0.3, 1.0, 0.8, 0.0],
                       [-0.7, 0.2, 0.8, 1.0, 0.0],
                       [0.0, 0.0, 0.0, 0.0, 0.0]])
    return kernel, np.array(["a", "a", "b", "b", "b"])


def test_knn_vote_with_one_neighbour_skips_a_constant_input():
    """k = 1: input 0's neighbour is 1 (not the constant 4), 1 -> 2, 2 -> 3, 3 -> 2, and the
    constant input votes 0.5; AUC = 4 of 6 (positive, negative) orderings."""
    kernel, groups = constant_input_kernel()
    auc, scores = separation.knn_vote_auc(kernel, groups, k=1)
    np.testing.assert_array_equal(scores, [1.0, 0.0, 0.0, 0.0, 0.5])
    assert auc == pytest.approx(4 / 6)


def test_knn_vote_keeps_the_given_excluded_edges_besides_a_constant_input():
    """With the edge 0-1 removed, input 0's nearest remaining candidate is 2 (group b); the
    caller's mask is left as it was."""
    kernel, groups = constant_input_kernel()
    excluded = np.zeros((5, 5), dtype=bool)
    excluded[0, 1] = excluded[1, 0] = True
    _, scores = separation.knn_vote_auc(kernel, groups, k=1, excluded_edges=excluded)
    np.testing.assert_array_equal(scores, [0.0, 0.0, 0.0, 0.0, 0.5])
    assert excluded.sum() == 2


def test_excluded_edges_are_never_neighbours(rng):
    from losskernel.readings.neighbours import nearest_neighbours

    kernel, groups = planted_kernel(rng)
    excluded = groups[:, None] == groups[None, :]  # forbid every same-group neighbour
    indices, valid = nearest_neighbours(kernel, k=5, excluded_edges=excluded)
    assert valid.all()
    assert (groups[indices] != groups[:, None]).all()
    assert separation.knn_vote_auc(kernel, groups, k=5, excluded_edges=excluded)[0] == 0.0


def test_block_means(rng):
    kernel, groups = planted_kernel(rng, strength=0.5)
    means = separation.block_means(kernel, groups)
    assert means["within_add"] == pytest.approx(0.5, abs=0.01)
    assert means["within"] == pytest.approx(0.5, abs=0.01)
    assert means["cross"] == pytest.approx(0.0, abs=0.01)


def test_block_means_of_a_hand_kernel_with_different_groups():
    kernel = np.array([[1.0, 0.8, 0.1, 0.3],
                       [0.8, 1.0, 0.5, -0.1],
                       [0.1, 0.5, 1.0, 0.2],
                       [0.3, -0.1, 0.2, 1.0]])
    means = separation.block_means(kernel, np.array(["a", "a", "b", "b"]))
    assert means == pytest.approx({"within_a": 0.8, "within_b": 0.2, "within": 0.5,
                                   "cross": 0.2})


def test_cross_group_z_is_small_for_independent_groups_and_large_for_coupled(rng):
    independent = rng.normal(size=(4, 1000, 6))
    group_a, group_b = np.arange(6) < 3, np.arange(6) >= 3
    _, _, z = separation.cross_group_covariance_z(independent, group_a, group_b, 10)
    assert abs(z) < 3
    coupled = independent + rng.normal(size=(4, 1000, 1))  # a common mode shared by all inputs
    covariance, _, z = separation.cross_group_covariance_z(coupled, group_a, group_b, 10)
    assert covariance == pytest.approx(1.0, abs=0.1)
    assert z > 10


def test_entry_test_sees_couplings_of_opposite_sign_that_the_mean_test_misses(rng):
    independent = rng.normal(size=(4, 1000, 8))
    group_a, group_b = np.arange(8) < 4, np.arange(8) >= 4
    entry_z2, null = separation.cross_group_entry_z2(independent, group_a, group_b, 10)
    assert null == pytest.approx(39 / 37)  # Student-t with 4 chains x 10 blocks - 1 dof
    assert entry_z2 == pytest.approx(null, rel=0.25)
    # inputs 0 and 4 share +f, inputs 1 and 5 share f with opposite signs: the cross block
    # has entries +1 and -1 (times var f = 1/2 of the losses), which cancel in its mean
    factor = rng.normal(size=(4, 1000))
    coupled = independent.copy()
    coupled[:, :, [0, 4, 1]] += factor[:, :, None]
    coupled[:, :, 5] -= factor
    _, _, mean_z = separation.cross_group_covariance_z(coupled, group_a, group_b, 10)
    assert abs(mean_z) < 3
    entry_z2, _ = separation.cross_group_entry_z2(coupled, group_a, group_b, 10)
    assert entry_z2 > 10 * null


def uneven_traces(rng):
    """(2 chains, 7 draws, 3 inputs) as float32, each input about its own non-zero mean."""
    return (rng.normal(size=(2, 7, 3)) + np.array([5.0, -3.0, 2.0])).astype(np.float32)


def test_cross_group_covariance_z_against_loops(rng):
    """A = inputs 0, 1 and B = input 2; 3 batches of 2 draws per chain (the 7th is left out of
    the blocks); computed in float64 although the traces are float32."""
    losses = uneven_traces(rng)
    values = losses.astype(np.float64).tolist()
    a = [[(draw[0] + draw[1]) / 2 for draw in chain] for chain in values]
    b = [[draw[2] for draw in chain] for chain in values]
    covariance = np.cov(np.ravel(a), np.ravel(b))[0, 1]
    mean_a, mean_b = np.mean(a), np.mean(b)
    products = [[(a[c][t] - mean_a) * (b[c][t] - mean_b) for t in range(7)] for c in range(2)]
    blocks = [(products[c][2 * k] + products[c][2 * k + 1]) / 2 for c in range(2) for k in range(3)]
    standard_error = statistics.stdev(blocks) / math.sqrt(6)
    result = separation.cross_group_covariance_z(losses, np.array([True, True, False]),
                                                 np.array([False, False, True]), 3)
    np.testing.assert_allclose(
        result, (covariance, standard_error, covariance / standard_error), rtol=1e-12)


def entry_z2_by_loops(losses, group_a, group_b, num_batches):
    """The mean z_ij² over the cross block's entries with SE_ij > 0, one entry at a time."""
    num_chains, num_draws, _ = losses.shape
    size = num_draws // num_batches
    z_squared = []
    for i in group_a:
        for j in group_b:
            x = losses[:, :, i].astype(np.float64)
            y = losses[:, :, j].astype(np.float64)
            x, y = x - x.mean(), y - y.mean()
            covariance = np.cov(x.ravel(), y.ravel())[0, 1]
            blocks = [float(np.dot(x[c, k * size:(k + 1) * size], y[c, k * size:(k + 1) * size]))
                      / size for c in range(num_chains) for k in range(num_batches)]
            standard_error = statistics.stdev(blocks) / math.sqrt(len(blocks))
            if standard_error > 0:
                z_squared.append((covariance / standard_error) ** 2)
    return np.mean(z_squared)


def test_cross_group_entry_z2_against_loops(rng):
    """Inputs with different non-zero means (each centred on its own pooled mean); 5 dof."""
    losses = uneven_traces(rng)
    entry_z2, null = separation.cross_group_entry_z2(
        losses, np.array([True, True, False]), np.array([False, False, True]), 3)
    assert entry_z2 == pytest.approx(entry_z2_by_loops(losses, [0, 1], [2], 3), rel=1e-12)
    assert null == 5 / 3


def test_cross_group_entry_z2_leaves_out_entries_of_a_constant_input(rng):
    losses = uneven_traces(rng)
    losses[:, :, 1] = 0.25
    entry_z2, _ = separation.cross_group_entry_z2(
        losses, np.array([True, True, False]), np.array([False, False, True]), 3)
    assert entry_z2 == pytest.approx(entry_z2_by_loops(losses, [0], [2], 3), rel=1e-12)


def test_cross_group_entry_z2_is_nan_when_every_entry_has_zero_standard_error(rng):
    losses = uneven_traces(rng)
    losses[:, :, :2] = 0.25  # group A never varies
    entry_z2, _ = separation.cross_group_entry_z2(
        losses, np.array([True, True, False]), np.array([False, False, True]), 3)
    assert math.isnan(entry_z2)


def test_cross_group_entry_z2_equal_blocks_have_zero_standard_error():
    """Period-2 traces: all 10 blocks are the same, so SE = 0 (though rounding leaves the
    computed variance of the blocks at -1.5e-21) and no entry is usable."""
    losses = np.tile([[0.1, 0.1], [0.2, 0.2]], (10, 1))[None]
    entry_z2, _ = separation.cross_group_entry_z2(
        losses, np.array([True, False]), np.array([False, True]), 10)
    assert math.isnan(entry_z2)


@pytest.mark.parametrize(("num_chains", "num_batches", "expected"), [
    (1, 2, math.inf), (1, 3, math.inf), (1, 4, 3.0), (2, 3, 5 / 3)])
def test_cross_group_entry_z2_null_is_that_of_student_t(rng, num_chains, num_batches, expected):
    """ν / (ν - 2) with ν = #blocks - 1, infinite for ν <= 2."""
    losses = rng.normal(size=(num_chains, 8, 2))
    _, null = separation.cross_group_entry_z2(losses, np.array([True, False]),
                                              np.array([False, True]), num_batches)
    assert null == expected


@pytest.mark.parametrize("function", [separation.cross_group_covariance_z,
                                  separation.cross_group_entry_z2])
def test_cross_group_tests_take_from_two_to_num_draws_batches(rng, function):
    losses = rng.normal(size=(2, 7, 2))
    group_a, group_b = np.array([True, False]), np.array([False, True])
    assert np.isfinite(function(losses, group_a, group_b, 2)[0])
    assert np.isfinite(function(losses, group_a, group_b, 7)[0])
    for num_batches in (1, 8):
        with pytest.raises(ValueError, match=rf"num_batches must be in \[2, num_draws=7\], "
                                             rf"got {num_batches}"):
            function(losses, group_a, group_b, num_batches)


def test_constant_inputs_vote_neutrally_and_are_nobodys_neighbour(rng):
    losses, inputs = two_task_traces(rng)
    losses[:, :, [3, 25]] = np.float32(0.1)  # one constant input in each task
    correlation = compute_kernel(losses.astype(np.float64), precision="float64")
    auc, scores = separation.knn_vote_auc(correlation, inputs["task"].to_numpy(), 5)
    assert scores[3] == scores[25] == 0.5
    others = np.setdiff1d(np.arange(40), [3, 25])
    np.testing.assert_array_equal(scores[others], (inputs["task"].to_numpy()[others] == "add"))
    assert auc == pytest.approx(1 - 0.5 / 400)  # one tie: the two neutral inputs


# task_separation --------------------------------------------------------------------------


def two_task_traces(rng, per_task=20, num_draws=600):
    """Losses with one factor per task (R ≈ 0.5 within a task, ≈ 0 across), as float32."""
    task = np.repeat(["add", "div"], per_task)
    factors = rng.normal(size=(2, num_draws, 2))
    losses = factors[:, :, (task == "div").astype(int)] + rng.normal(
        size=(2, num_draws, len(task)))
    inputs = pd.DataFrame({"obs_id": [f"x{i:03d}" for i in range(len(task))], "task": task,
                           "label": np.arange(len(task)) % 5})
    return losses.astype(np.float32), inputs


def edge_rule(calls):
    """An edge rule that records its calls: same label, same label parity, or none."""
    def excluded_edges(inputs, rule):
        calls.append(rule)
        label = inputs["label"].to_numpy()
        key = {"same_output": label, "shared_token": label % 2, "none": None}[rule]
        return None if key is None else key[:, None] == key[None, :]
    return excluded_edges


def test_task_separation_of_two_independent_tasks(rng):
    losses, inputs = two_task_traces(rng)
    correlation = compute_kernel(losses).astype(np.float32)
    calls = []
    values, scores = separation.task_separation(correlation, losses, inputs, edge_rule(calls),
                                                knn_k=5, standard_error_batches=10)
    assert list(values) == [
        "roc_auc", "roc_auc_shared_token", "roc_auc_all_edges", "roc_auc_pairwise",
        "within_task_mean_R", "cross_task_mean_R", "within_add_mean_R", "within_div_mean_R",
        "cross_task_K", "cross_task_K_se", "cross_task_z", "cross_task_entry_z2",
        "cross_task_entry_z2_null"]
    assert calls == [rule for rule, _ in separation.KNN_READINGS.values()]
    for reading in (*separation.KNN_READINGS, "roc_auc_pairwise"):
        assert values[reading] == 1.0, reading
    assert values["within_task_mean_R"] == pytest.approx(0.5, abs=0.05)
    assert values["cross_task_mean_R"] == pytest.approx(0.0, abs=0.05)
    means = separation.block_means(correlation.astype(np.float64), inputs["task"].to_numpy())
    assert values["within_add_mean_R"] == means["within_add"]
    assert values["within_div_mean_R"] == means["within_div"]
    assert (values["cross_task_K"], values["cross_task_K_se"], values["cross_task_z"]) == (
        separation.cross_group_covariance_z(losses, np.arange(40) < 20, np.arange(40) >= 20, 10))
    assert abs(values["cross_task_z"]) < 4
    assert (values["cross_task_entry_z2"], values["cross_task_entry_z2_null"]) == (
        separation.cross_group_entry_z2(losses, np.arange(40) < 20, np.arange(40) >= 20, 10))
    assert list(scores.columns) == ["obs_id", "task", *separation.KNN_READINGS]
    pd.testing.assert_frame_equal(scores[["obs_id", "task"]], inputs[["obs_id", "task"]])
    np.testing.assert_array_equal(scores["roc_auc_all_edges"], (inputs["task"] == "add") * 1.0)


def test_task_separation_refuses_traces_of_other_inputs(rng):
    losses, inputs = two_task_traces(rng)
    with pytest.raises(ValueError, match="the losses hold 39 inputs and the kernel 40"):
        separation.task_separation(compute_kernel(losses), losses[:, :, 1:], inputs,
                                   edge_rule([]), knn_k=5, standard_error_batches=10)
