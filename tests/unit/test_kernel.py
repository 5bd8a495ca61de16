import numpy as np
import pytest
import xarray as xr

from losskernel.method import kernel

# Stated tolerances of the float32 product against float64 numpy: a float32 dot product of S
# terms errs by about sqrt(S) * 6e-8 relative to sqrt(K_ii K_jj); 1e-5 leaves room for S ~ 1e4.
FLOAT32_RELATIVE = 1e-5


def assert_kernel_close(actual, expected, precision):
    if precision == "float64":
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-14)
    else:
        scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
        assert np.all(np.abs(actual - expected) <= FLOAT32_RELATIVE * scale + 1e-12)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_covariance_kernel_equals_sample_covariance_of_stacked_draws(rng, precision):
    losses = rng.normal(size=(3, 50, 4))
    expected = np.cov(losses.reshape(150, 4), rowvar=False)  # pooled, ddof = 1
    actual = kernel.covariance_kernel(losses, precision=precision)
    assert actual.dtype == np.dtype(precision)
    assert_kernel_close(actual, expected, precision)


@pytest.mark.parametrize("centring", ["pooled", "per_chain"])
@pytest.mark.parametrize("kind", ["covariance", "correlation"])
def test_float32_kernel_matches_the_float64_reference_at_scale(rng, kind, centring):
    # Losses like real traces: a large common offset, per-input scales over three decades and
    # a shared component, so that cancellation in the centring would show.
    num_inputs = 600  # more than one block of the product (512), the last one partial
    scales = 10.0 ** rng.uniform(-2, 1, num_inputs)
    shared = rng.normal(size=(4, 500, 1))
    losses = 5.0 + scales * (rng.normal(size=(4, 500, num_inputs)) + 0.5 * shared)
    reference = kernel.compute_kernel(losses, kind, centring, precision="float64")
    fast = kernel.compute_kernel(losses.astype(np.float32), kind, centring)
    assert fast.dtype == np.float32
    assert_kernel_close(fast, reference, "float32")
    np.testing.assert_array_equal(fast, fast.T)  # exactly symmetric across the blocks
    if kind == "correlation":
        assert np.all(np.diag(fast) == 1) and np.abs(fast).max() <= 1


EDGE_SHAPES = {  # inputs N, block_inputs, chunk_columns: every edge of the blocks and chunks
    "one partial block": (7, 512, 4096),
    "exactly one block": (64, 64, 4096),
    "N a multiple of the block, chunks of one column": (96, 32, 1),
    "blocks and chunks that do not divide N": (301, 16, 97),
    "over one default chunk, the last block partial": (4500, 512, 4096),
}


def independent_kernel(losses: np.ndarray, kind: str) -> np.ndarray:
    """K by ``np.cov``, R by ``np.corrcoef`` over the varying inputs (0 elsewhere), in float64."""
    stacked = losses.reshape(-1, losses.shape[-1]).astype(np.float64)
    if kind == "covariance":
        return np.cov(stacked, rowvar=False)
    varying = np.ptp(stacked, axis=0) > 0
    expected = np.zeros((stacked.shape[1],) * 2)
    expected[np.ix_(varying, varying)] = np.corrcoef(stacked[:, varying], rowvar=False)
    return expected


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["covariance", "correlation"])
@pytest.mark.parametrize("shape", list(EDGE_SHAPES))
def test_kernel_is_exactly_symmetric_and_right_at_every_block_edge(rng, shape, kind, precision):
    num_inputs, block_inputs, chunk_columns = EDGE_SHAPES[shape]
    scales = 10.0 ** rng.uniform(-1, 1, num_inputs)
    losses = (3.0 + scales * rng.normal(size=(2, 20, num_inputs))).astype(precision)
    losses[:, :, -2] = 0.25  # a constant input, in the last block and chunk
    actual = kernel.compute_kernel(losses, kind, precision=precision,
                                   block_inputs=block_inputs, chunk_columns=chunk_columns)
    assert actual.dtype == np.dtype(precision) and actual.shape == (num_inputs, num_inputs)
    np.testing.assert_array_equal(actual, actual.T)
    assert_kernel_close(actual, independent_kernel(losses, kind), precision)


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
    assert_kernel_close(within, expected_within, "float32")
    assert pooled[0, 1] > 40  # the offsets dominate the pooled covariance


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_correlation_has_unit_diagonal_and_zero_rows_for_constant_losses(rng, precision):
    losses = rng.normal(size=(2, 100, 3))
    losses[:, :, 2] = 7.0  # an input whose loss never moves
    correlation = kernel.compute_kernel(losses, kind="correlation", precision=precision)
    assert np.all(np.diag(correlation)[:2] == 1.0)
    assert np.all(correlation[2] == 0) and np.all(correlation[:, 2] == 0)
    expected = np.corrcoef(losses[:, :, :2].reshape(200, 2), rowvar=False)
    assert_kernel_close(correlation[:2, :2], expected, precision)
    np.testing.assert_allclose(
        correlation, kernel.correlation_from_covariance(kernel.covariance_kernel(losses)),
        atol=FLOAT32_RELATIVE)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_constant_inputs_whose_mean_does_not_round_trip_get_zero_rows(rng, dtype):
    # 0.1 and 0.7 repeated: the float64 mean leaves a residue of ~1e-17 in every centred
    # entry, which standardized to R = -1 between the two before constant inputs were tested
    losses = rng.normal(size=(2, 50, 4)).astype(dtype)
    losses[:, :, 1], losses[:, :, 3] = dtype(0.1), dtype(0.7)
    losses[0, 0, 2] += dtype(1e-3)  # varies a little: not constant
    np.testing.assert_array_equal(kernel.constant_inputs(losses), [False, True, False, True])
    correlation = kernel.correlation_kernel(losses, precision="float64")
    assert np.all(correlation[[1, 3]] == 0) and np.all(correlation[:, [1, 3]] == 0)
    np.testing.assert_array_equal(np.diag(correlation), [1.0, 0.0, 1.0, 0.0])
    traces = xr.Dataset({"loss": (("chain", "draw", "obs_id"), losses)},
                        coords={"obs_id": ["a", "b", "c", "d"]})
    assert kernel.kernel_dataset(traces).attrs["constant_inputs"] == 2


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
    with pytest.raises(ValueError, match="precision"):
        kernel.compute_kernel(np.zeros((2, 5, 3)), precision="float16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="block_inputs must be a positive number of inputs, got 0"):
        kernel.compute_kernel(np.ones((2, 5, 3)), block_inputs=0)
    with pytest.raises(ValueError, match=r"chunk_columns must be a positive number .* got 0"):
        kernel.compute_kernel(np.ones((2, 5, 3)), chunk_columns=0)
