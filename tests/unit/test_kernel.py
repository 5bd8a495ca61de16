import re
import tracemalloc

import numpy as np
import pytest
import xarray as xr

from losskernel.method import kernel
from losskernel.provenance import UnreadableFileError

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


def test_centre_losses_defaults_to_pooled_centring_with_a_float64_mean():
    # chains [1, 2, 2] and [3, 3, 3]: pooled mean 14/6, which float32 would round differently
    losses = np.array([[1, 2, 2], [3, 3, 3]], dtype=np.float32).reshape(2, 3, 1)
    centred = kernel.centre_losses(losses)
    assert centred.dtype == np.float64 and centred.shape == (6, 1)
    np.testing.assert_array_equal(centred[:, 0], np.array([1, 2, 2, 3, 3, 3.0]) - 14.0 / 6)


def test_centre_losses_takes_differences_in_float64_whatever_the_input_dtype():
    # 1 + 2^-60 rounds to 1 in float64, so its centred loss is 0, not the long double 2^-60
    losses = np.array([1 + np.longdouble(2) ** -60, 1], dtype=np.longdouble).reshape(1, 2, 1)
    np.testing.assert_array_equal(kernel.centre_losses(losses), [[0.0], [0.0]])


def test_centre_losses_names_the_shape_it_needs():
    with pytest.raises(ValueError, match=r"^losses must have dims \(chain, draw, obs_id\), "
                                         r"got shape \(3, 2\)$"):
        kernel.centre_losses(np.zeros((3, 2)))


def test_one_degree_of_freedom_is_enough():
    """One chain of two draws (pooled: S - 1 = 1) and two chains of one draw give K and R."""
    assert kernel.degrees_of_freedom(1, 2, "pooled") == 1
    assert kernel.degrees_of_freedom(2, 2, "per_chain") == 2
    losses = np.array([[[1.0, 4.0], [3.0, 0.0]]])  # centred [-1, 1] and [2, -2]
    expected = np.array([[2.0, -4.0], [-4.0, 8.0]])
    np.testing.assert_array_equal(kernel.covariance_kernel(losses), expected)
    np.testing.assert_array_equal(kernel.covariance_kernel(losses, block_inputs=1), expected)
    correlation = kernel.correlation_kernel(losses.reshape(2, 1, 2))  # one draw per chain
    np.testing.assert_allclose(correlation, [[1.0, -1.0], [-1.0, 1.0]], rtol=0, atol=1e-6)


def test_gram_mirrors_the_upper_triangle_when_blas_sums_the_lower_one_differently(monkeypatch):
    """A BLAS whose (b, a) entry of a diagonal block differs in the last bit from its (a, b)
    entry: the Gram matrix keeps the upper one on both sides, here the exact integer value.
    Only the block rows from the diagonal rightwards are multiplied: 3 x 5, then 2 x 2."""
    columns = np.array([[1, 2, 0, -1, 3], [2, -1, 1, 0, 1], [0, 1, 2, 2, -2]], dtype=np.float32)
    expected = np.array([[sum(columns[s, i] * columns[s, j] for s in range(3))
                          for j in range(5)] for i in range(5)])
    matmul = np.matmul
    products = []

    def uneven_matmul(left, right, out):
        products.append(out.shape)
        matmul(left, right, out=out)
        block = out[:, :len(out)]  # the diagonal block of this block row
        lower = np.tri(len(out), k=-1, dtype=bool)
        block[lower] = np.nextafter(block[lower], np.float32(np.inf))

    monkeypatch.setattr(np, "matmul", uneven_matmul)
    np.testing.assert_array_equal(kernel._gram(columns, block_inputs=3), expected)
    assert products == [(3, 5), (2, 2)]


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


def test_correlation_of_identical_and_opposite_inputs_stays_within_one():
    # the float32 product of these unit columns gives 1.0000002 and -1.0000002 before clipping
    draws = np.random.default_rng(10).normal(size=(2, 37, 1))
    correlation = kernel.correlation_kernel(np.concatenate([draws, draws, -draws], axis=2))
    assert np.abs(correlation).max() <= 1
    np.testing.assert_allclose(correlation, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-6)


def test_correlation_from_covariance_divides_by_the_standard_deviations():
    correlation = kernel.correlation_from_covariance(np.array([[0.25, 0.1], [0.1, 4.0]]))
    np.testing.assert_allclose(correlation, [[1.0, 0.1], [0.1, 1.0]], rtol=1e-15)


def test_correlation_from_covariance_zeroes_inputs_without_variance():
    """Zero and (by rounding) negative variances give zero rows, even where K_ij is not 0."""
    covariance = np.array([[1.0, 1e-9, 1e-9], [1e-9, 0.0, 0.0], [1e-9, 0.0, -1e-18]])
    np.testing.assert_array_equal(kernel.correlation_from_covariance(covariance),
                                  [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


def test_correlation_from_covariance_clips_rounding_past_one():
    beyond = 1 + 1e-7  # |K_ij| a little above sqrt(K_ii K_jj), as rounding can leave it
    covariance = np.array([[1.0, beyond, -beyond], [beyond, 1.0, -beyond],
                           [-beyond, -beyond, 1.0]])
    np.testing.assert_array_equal(kernel.correlation_from_covariance(covariance),
                                  [[1.0, 1.0, -1.0], [1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])


def test_constant_inputs_allow_four_units_in_the_last_place():
    """Peak-to-peak of 4 ulps of the largest |loss| (2: ulp = 2 eps) is constant, more is not."""
    for dtype, eps in ((np.float32, 2.0 ** -23), (np.float64, 2.0 ** -52)):
        four_ulps = 4 * eps * 2
        losses = np.array([[2.0, 2.0, 2.0, 2.0],
                           [2.0, 2 - eps, 2 - four_ulps, 2 - four_ulps - eps]], dtype=dtype)
        np.testing.assert_array_equal(kernel.constant_inputs(losses.reshape(1, 2, 4)),
                                      [True, True, True, False])


def test_constant_inputs_of_integer_losses_are_the_unchanging_ones():
    losses = np.array([[3, 3, -7], [3, 4, -7]]).reshape(1, 2, 3)
    np.testing.assert_array_equal(kernel.constant_inputs(losses), [True, False, True])


def test_standardized_losses_default_to_pooled_float32_columns_and_a_boolean_mask():
    # input 0 is 0 in chain 0 and 2 in chain 1: pooled it varies (Z = [-1, -1, 1, 1] / 2),
    # per chain it never moves; input 1 is constant
    losses = np.array([[[0.0, 5.0], [0.0, 5.0]], [[2.0, 5.0], [2.0, 5.0]]])
    standardized, varies = kernel.standardized_losses(losses)
    assert standardized.dtype == np.float32 and varies.dtype == bool
    np.testing.assert_array_equal(standardized, [[-0.5, 0], [-0.5, 0], [0.5, 0], [0.5, 0]])
    np.testing.assert_array_equal(varies, [True, False])
    standardized, varies = kernel.standardized_losses(losses, "per_chain")
    np.testing.assert_array_equal(standardized, np.zeros((4, 2)))
    np.testing.assert_array_equal(varies, [False, False])
    correlation = kernel.correlation_kernel(losses)
    assert correlation.dtype == np.float32  # the default precision
    np.testing.assert_array_equal(correlation, [[1, 0], [0, 0]])
    np.testing.assert_array_equal(kernel.correlation_kernel(losses, "per_chain"), np.zeros((2, 2)))


def test_standardized_losses_hold_float64_temporaries_of_one_chunk_at_a_time():
    """Peak memory: the float32 output (800 kB) plus chunks of 10 columns, not S x N float64."""
    losses = np.random.default_rng(0).normal(size=(2, 50, 2000))
    tracemalloc.start()
    try:
        standardized, _ = kernel.standardized_losses(losses, chunk_columns=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert standardized.nbytes == 100 * 2000 * 4
    assert peak < 1.5 * standardized.nbytes  # one S x N float64 array alone is 2x the output


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


def test_kernel_dataset_holds_the_kernel_of_its_kind_and_centring_and_the_trace_settings():
    losses = np.array([[[1.0, 2.0], [3.0, 2.0], [2.0, 6.0]], [[5.0, 1.0], [4.0, 0.0], [6.0, 2.0]]])
    traces = xr.Dataset({"loss": (("chain", "draw", "obs_id"), losses)},
                        coords={"obs_id": ["a", "b"]},
                        attrs={"sgld_step_size": 1e-3, "checkpoint_step": 40, "model": "mlp"})
    pooled = kernel.kernel_dataset(traces, "covariance")
    assert pooled["kernel"].dtype == np.float32
    np.testing.assert_allclose(pooled["kernel"].values, np.cov(losses.reshape(6, 2), rowvar=False),
                               rtol=1e-6)
    assert pooled.attrs == {"kind": "covariance", "centring": "pooled", "num_chains": 2,
                            "num_draws": 3, "constant_inputs": 0, "sgld_step_size": 1e-3,
                            "checkpoint_step": 40}
    per_chain = kernel.kernel_dataset(traces, "covariance", "per_chain")
    centred = losses - losses.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(per_chain["kernel"].values,
                               np.einsum("cti,ctj->ij", centred, centred) / (6 - 2), rtol=1e-6)
    assert per_chain.attrs["centring"] == "per_chain"


def small_kernel_dataset() -> xr.Dataset:
    return xr.Dataset({"kernel": (("obs_id", "obs_id_2"), np.eye(2, dtype=np.float32))},
                      coords={"obs_id": ["a", "b"], "obs_id_2": ["a", "b"]},
                      attrs={"kind": "correlation", "centring": "pooled"})


def test_validate_kernel_names_what_departs_from_the_schema():
    valid = small_kernel_dataset()
    kernel.validate_kernel(valid)
    with pytest.raises(ValueError, match=r"^kernel dataset lacks the variable 'kernel'$"):
        kernel.validate_kernel(valid.drop_vars("kernel"))
    with pytest.raises(ValueError, match=r"^kernel has dims \('obs_id', 'other'\), "
                                         r"expected \('obs_id', 'obs_id_2'\)$"):
        kernel.validate_kernel(valid.rename_dims(obs_id_2="other"))
    with pytest.raises(ValueError, match=r"^kernel coordinates obs_id and obs_id_2 differ$"):
        kernel.validate_kernel(valid.assign_coords(obs_id_2=["b", "a"]))
    with pytest.raises(ValueError, match=r"^kernel attr 'kind' must be one of "
                                         r"\('covariance', 'correlation'\), got 'cov'$"):
        kernel.validate_kernel(valid.assign_attrs(kind="cov"))
    with pytest.raises(ValueError, match=r"^kernel attr 'centring' must be one of "
                                         r"\('pooled', 'per_chain'\), got 'chainwise'$"):
        kernel.validate_kernel(valid.assign_attrs(centring="chainwise"))


def test_save_kernel_writes_compressed_netcdf4_with_a_checksum_whatever_xarrays_engine(tmp_path):
    # xarray's own preference (here scipy, which has neither compression nor checksums) is
    # not used: the file is netCDF4 with zlib level 4 and a fletcher32 checksum
    with xr.set_options(netcdf_engine_order=("scipy",)):
        kernel.save_kernel(small_kernel_dataset(), tmp_path / "k.nc")
    with xr.open_dataset(tmp_path / "k.nc", engine="netcdf4") as written:
        encoding = written["kernel"].encoding
    assert (encoding["zlib"], encoding["complevel"], encoding["fletcher32"]) == (True, 4, True)


def test_load_kernel_of_a_file_that_is_not_netcdf_names_it_and_netcdfs_reason(tmp_path):
    path = tmp_path / "k.nc"
    path.write_bytes(b"not a netCDF file")
    with pytest.raises(UnreadableFileError, match=rf"^{re.escape(str(path))} cannot be read "
                                                  r"\(truncated or corrupted: OSError: "
                                                  r".*NetCDF: Unknown file format.*; delete it"):
        kernel.load_kernel(path)


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
    for compute in (kernel.covariance_kernel, kernel.correlation_kernel):  # passed to _gram
        with pytest.raises(ValueError, match=r"block_inputs must be a positive number .* got 0"):
            compute(np.ones((2, 5, 3)), block_inputs=0)
    with pytest.raises(ValueError, match=r"block_inputs must be a positive number .* got 0"):
        kernel.compute_kernel(np.ones((2, 5, 3)), "covariance", block_inputs=0)
    with pytest.raises(ValueError, match=r"^kind must be one of \('covariance', 'correlation'\), "
                                         r"got 'cov'$"):
        kernel.compute_kernel(np.ones((2, 5, 3)), "cov")  # type: ignore[arg-type]
