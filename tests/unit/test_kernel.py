import numpy as np
import pytest
import xarray as xr

from losskernel import kernel


def test_covariance_kernel_equals_sample_covariance_of_stacked_draws(rng):
    losses = rng.normal(size=(3, 50, 4))
    expected = np.cov(losses.reshape(150, 4), rowvar=False)  # pooled, ddof = 1
    np.testing.assert_allclose(kernel.covariance_kernel(losses), expected, rtol=1e-12)


def test_covariance_kernel_recovers_a_known_covariance(rng):
    true_covariance = np.array([[2.0, 0.8, 0.0], [0.8, 1.0, -0.3], [0.0, -0.3, 0.5]])
    samples = rng.multivariate_normal(np.zeros(3), true_covariance, size=200_000)
    estimate = kernel.covariance_kernel(samples.reshape(4, 50_000, 3))
    np.testing.assert_allclose(estimate, true_covariance, atol=0.02)


def test_per_chain_centring_removes_chain_offsets(rng):
    noise = rng.normal(size=(4, 500, 3))
    offsets = np.array([0.0, 10.0, -10.0, 5.0])[:, None, None]  # chains stuck in different places
    within = kernel.covariance_kernel(noise + offsets, centring="per_chain")
    pooled = kernel.covariance_kernel(noise + offsets, centring="pooled")
    expected_within = sum(np.cov(noise[c], rowvar=False) * 499 for c in range(4)) / (2000 - 4)
    np.testing.assert_allclose(within, expected_within, rtol=1e-10)
    assert pooled[0, 1] > 40  # the offsets dominate the pooled covariance


def test_correlation_has_unit_diagonal_and_zero_rows_for_constant_losses(rng):
    losses = rng.normal(size=(2, 100, 3))
    losses[:, :, 2] = 7.0  # an input whose loss never moves
    correlation = kernel.compute_kernel(losses, kind="correlation")
    np.testing.assert_allclose(np.diag(correlation)[:2], 1.0)
    assert np.all(correlation[2] == 0) and np.all(correlation[:, 2] == 0)
    expected = np.corrcoef(losses[:, :, :2].reshape(200, 2), rowvar=False)
    np.testing.assert_allclose(correlation[:2, :2], expected, rtol=1e-10)


def test_kernel_dataset_carries_obs_coordinates_and_round_trips(tmp_path, rng):
    traces = xr.Dataset(
        {"loss": (("chain", "draw", "obs_id"), rng.normal(size=(2, 30, 3)))},
        coords={"obs_id": ["a", "b", "c"], "task": ("obs_id", ["add", "add", "div"])},
    )
    dataset = kernel.kernel_dataset(traces, "covariance", "pooled")
    assert dataset["kernel"].dims == ("obs_id", "obs_id_2")
    assert list(dataset["task"].values) == ["add", "add", "div"]
    assert float(dataset["kernel"].sel(obs_id="a", obs_id_2="b")) == pytest.approx(
        float(dataset["kernel"].sel(obs_id="b", obs_id_2="a")))
    kernel.save_kernel(dataset, tmp_path / "k.nc")
    xr.testing.assert_identical(kernel.load_kernel(tmp_path / "k.nc"), dataset)


def test_invalid_arguments_are_named():
    with pytest.raises(ValueError, match="centring"):
        kernel.centre_losses(np.zeros((1, 3, 2)), centring="chainwise")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="degrees of freedom"):
        kernel.covariance_kernel(np.zeros((2, 1, 3)), centring="per_chain")
