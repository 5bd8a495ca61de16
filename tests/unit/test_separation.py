"""Task separation readings against planted kernels and traces with known answers."""

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
