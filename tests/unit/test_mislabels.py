"""The mislabel readings with known answers: K(z, z) as the score of a flipped label beside its
baselines (``mislabel_readings``), the curves of the ROC figure (``mislabel_baseline_curves``)
and the baselines that need no SGLD (``perturbation_baselines``)."""

import copy
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from tests.unit.test_readings import kernels, trace_dataset

from losskernel.readings import mislabels

# mislabel_readings -----------------------------------------------------------------------


def mislabel_traces(rng, num_inputs=40, num_flipped=8, num_draws=200):
    """Losses whose variance and mean are larger for the flipped inputs (the first ones)."""
    flipped = np.arange(num_inputs) < num_flipped
    scale = np.where(flipped, 3.0, 1.0)
    mean = np.where(flipped, 5.0, 0.5)
    losses = mean + scale * rng.normal(size=(2, num_draws, num_inputs))
    return trace_dataset(losses, obs_coords={"mislabeled": flipped}), flipped


def baselines_table(rng, dataset, flipped):
    table = pd.DataFrame({
        "obs_id": dataset["obs_id"].values,
        "flag": flipped.astype(float),
        "reversed": 1.0 - flipped,
        "random": rng.normal(size=len(flipped)),
    })
    return table.sample(frac=1.0, random_state=0)  # rows out of the kernel's order


def test_mislabels_scores_self_covariance_and_baselines(rng):
    dataset, flipped = mislabel_traces(rng)
    baselines = baselines_table(rng, dataset, flipped)
    covariance, _ = kernels(dataset)
    values, scores = mislabels.mislabel_readings(covariance, dataset, baselines)
    diagonal = np.diag(covariance["kernel"].values)
    assert list(values) == ["mislabel_roc_auc", "self_cov_mislabeled", "self_cov_normal",
                            "self_cov_ratio", "baseline_roc_auc_posterior_mean_loss",
                            "baseline_roc_auc_flag", "baseline_roc_auc_reversed",
                            "baseline_roc_auc_random"]
    assert values["mislabel_roc_auc"] == 1.0
    assert values["self_cov_mislabeled"] == pytest.approx(diagonal[flipped].mean(), rel=1e-5)
    assert values["self_cov_normal"] == pytest.approx(diagonal[~flipped].mean(), rel=1e-5)
    assert values["self_cov_mislabeled"] == pytest.approx(9.0, rel=0.15)
    assert values["self_cov_normal"] == pytest.approx(1.0, rel=0.15)
    assert values["self_cov_ratio"] == pytest.approx(
        values["self_cov_mislabeled"] / values["self_cov_normal"], rel=1e-5)
    assert values["baseline_roc_auc_flag"] == 1.0
    assert values["baseline_roc_auc_reversed"] == 0.0
    random = baselines.set_index("obs_id").loc[dataset["obs_id"].values, "random"]
    assert values["baseline_roc_auc_random"] == pytest.approx(roc_auc_score(flipped, random),
                                                              abs=1e-6)
    assert values["baseline_roc_auc_posterior_mean_loss"] == 1.0
    assert list(scores["obs_id"]) == list(dataset["obs_id"].values)
    assert list(scores.columns) == ["obs_id", "mislabeled", "self_cov", "posterior_mean_loss",
                                    "flag", "reversed", "random"]
    np.testing.assert_allclose(scores["self_cov"], diagonal, rtol=1e-5)
    np.testing.assert_array_equal(scores["flag"], flipped.astype(float))
    np.testing.assert_allclose(scores["posterior_mean_loss"],
                               dataset["loss"].mean(dim=("chain", "draw")).values, rtol=1e-5)


def test_mislabels_refuses_baselines_that_miss_an_input(rng):
    dataset, flipped = mislabel_traces(rng)
    baselines = baselines_table(rng, dataset, flipped)
    baselines = baselines[baselines["obs_id"] != "x_0003"]
    with pytest.raises(ValueError, match=r"does not cover the kernel inputs: 1 of 40 .*x_0003"):
        mislabels.mislabel_readings(kernels(dataset)[0], dataset, baselines)


def test_mislabels_refuses_traces_of_other_inputs(rng):
    dataset, flipped = mislabel_traces(rng)
    other = dataset.isel(obs_id=slice(None, None, -1))
    with pytest.raises(ValueError, match=re.escape(
            "the traces and the covariance kernel hold different kernel inputs (obs_id differ); "
            "recompute the kernel from these traces")):
        mislabels.mislabel_readings(kernels(dataset)[0], other,
                                    baselines_table(rng, dataset, flipped))


def test_mislabels_refusal_names_the_first_three_missing_inputs(rng):
    dataset, flipped = mislabel_traces(rng)
    baselines = baselines_table(rng, dataset, flipped)
    baselines = baselines[~baselines["obs_id"].isin(["x_0001", "x_0002", "x_0005", "x_0007"])]
    with pytest.raises(ValueError, match=re.escape(
            "4 of 40 lack a value (first: ['x_0001', 'x_0002', 'x_0005']); recompute the "
            "baselines for the inputs of this kernel")):
        mislabels.mislabel_readings(kernels(dataset)[0], dataset, baselines)


def test_mislabels_refuses_baselines_that_repeat_an_input(rng):
    """Two rows for one input would add a row to the scores: the merge is one-to-one."""
    dataset, flipped = mislabel_traces(rng)
    baselines = baselines_table(rng, dataset, flipped)
    baselines = pd.concat([baselines, baselines[baselines["obs_id"] == "x_0003"]])
    with pytest.raises(pd.errors.MergeError, match="not unique in right dataset"):
        mislabels.mislabel_readings(kernels(dataset)[0], dataset, baselines)


def test_mislabels_best_noise_scale_is_the_largest_auc_of_each_statistic(rng):
    """Scores with AUC 1 (the flag), 1/2 (a constant) and 0 (the flag reversed) at several σ."""
    dataset, flipped = mislabel_traces(rng, num_draws=20)
    flag = flipped.astype(float)
    baselines = pd.DataFrame({
        "obs_id": dataset["obs_id"].values,
        "noise_variance_sigma0.01": np.ones_like(flag),
        "noise_variance_sigma0.1": flag,
        "noise_variance_sigma1": 1.0 - flag,
        "noise_mean_sigma0.01": 1.0 - flag,
        "noise_mean_sigma0.1": np.ones_like(flag),
    })
    values, _ = mislabels.mislabel_readings(kernels(dataset)[0], dataset, baselines)
    assert [values[f"baseline_roc_auc_noise_variance_sigma{s}"] for s in ("0.01", "0.1", "1")] \
        == [0.5, 1.0, 0.0]
    assert values["baseline_roc_auc_noise_variance_best"] == 1.0
    assert values["baseline_roc_auc_noise_mean_best"] == 0.5
    assert list(values)[-2:] == ["baseline_roc_auc_noise_variance_best",
                                 "baseline_roc_auc_noise_mean_best"]


# mislabel_baseline_curves ----------------------------------------------------------------


def test_baseline_curves_keep_the_best_noise_scale():
    values = {"baseline_roc_auc_posterior_mean_loss": 0.7,
              "baseline_roc_auc_noise_variance_sigma0.01": 0.6,
              "baseline_roc_auc_noise_variance_sigma0.1": 0.8,
              "baseline_roc_auc_noise_variance_best": 0.8,
              "baseline_roc_auc_history_loss_mean": 0.9}
    assert mislabels.mislabel_baseline_curves(values) == {
        "posterior_mean_loss": "SGLD posterior mean loss",
        "noise_variance_sigma0.1": "loss variance, Gaussian weight noise σ=0.1",
        "history_loss_mean": "loss mean over training checkpoints"}


def test_baseline_curves_name_every_baseline():
    """Every baseline the workflow computes, with the noise statistics at their best σ."""
    values = {"baseline_roc_auc_posterior_mean_loss": 0.7,
              "baseline_roc_auc_loss_at_optimum": 0.6,
              "baseline_roc_auc_noise_variance_sigma0.01": 0.8,
              "baseline_roc_auc_noise_variance_sigma0.1": 0.5,
              "baseline_roc_auc_noise_variance_best": 0.8,
              "baseline_roc_auc_noise_mean_sigma0.01": 0.6,
              "baseline_roc_auc_noise_mean_sigma1": 0.75,
              "baseline_roc_auc_noise_mean_best": 0.75,
              "baseline_roc_auc_history_loss_mean": 0.9,
              "baseline_roc_auc_history_loss_variance": 0.65}
    assert mislabels.mislabel_baseline_curves(values) == {
        "posterior_mean_loss": "SGLD posterior mean loss",
        "loss_at_optimum": "loss at w*",
        "noise_variance_sigma0.01": "loss variance, Gaussian weight noise σ=0.01",
        "noise_mean_sigma1": "loss mean, Gaussian weight noise σ=1",
        "history_loss_mean": "loss mean over training checkpoints",
        "history_loss_variance": "loss variance over training checkpoints"}


# perturbation_baselines ------------------------------------------------------------------


def test_perturbation_baselines_leave_the_model_and_repeat_the_noise_stream():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    inputs, targets = torch.randn(10, 3), torch.randint(0, 2, (10,))

    def losses_of(module):
        with torch.no_grad():
            return torch.nn.functional.cross_entropy(module(inputs), targets,
                                                     reduction="none").numpy()

    checkpoints = {step: {name: torch.randn_like(value) for name, value in
                          model.state_dict().items()} for step in (5, 0, 2)}
    before = copy.deepcopy(model.state_dict())
    table = mislabels.perturbation_baselines(losses_of, model, checkpoints,
                                             np.array([f"x{i}" for i in range(10)]),
                                             [0.0, 0.5], noise_draws=4, seed=3)
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert list(table.columns) == [
        "obs_id", "loss_at_optimum", "noise_variance_sigma0", "noise_mean_sigma0",
        "noise_variance_sigma0.5", "noise_mean_sigma0.5", "history_loss_mean",
        "history_loss_variance"]
    np.testing.assert_array_equal(table["loss_at_optimum"], losses_of(model))
    np.testing.assert_array_equal(table["noise_variance_sigma0"], 0.0)  # σ = 0: w* every time
    np.testing.assert_array_equal(table["noise_mean_sigma0"], losses_of(model))
    # σ = 0.5 continues the one generator after the σ = 0 draws, w* + σ ξ parameter by parameter
    noisy, generator = copy.deepcopy(model), torch.Generator().manual_seed(3)
    for sigma in (0.0, 0.5):
        draws = []
        for _ in range(4):
            with torch.no_grad():
                for perturbed, optimum in zip(noisy.parameters(), model.parameters(),
                                              strict=True):
                    perturbed.copy_(optimum).add_(
                        torch.randn(optimum.shape, generator=generator), alpha=sigma)
            draws.append(losses_of(noisy))
    np.testing.assert_array_equal(table["noise_variance_sigma0.5"], np.var(draws, axis=0, ddof=1))
    np.testing.assert_array_equal(table["noise_mean_sigma0.5"], np.mean(draws, axis=0))
    history = []
    for step in (0, 2, 5):
        noisy.load_state_dict(checkpoints[step])
        history.append(losses_of(noisy))
    np.testing.assert_array_equal(table["history_loss_mean"], np.mean(history, axis=0))
    np.testing.assert_array_equal(table["history_loss_variance"],
                                  np.var(history, axis=0, ddof=1))
