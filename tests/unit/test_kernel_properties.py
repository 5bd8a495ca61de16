"""Properties of K and R for random shapes, block sizes and losses (hypothesis).

Losses are drawn on a grid of eighths in [-125, 125], so that every value, chain mean and
difference below is exact in float64 and an input is constant exactly when all its losses are
equal (distinct values differ by 1/8, far above the rounding test of
``kernel.constant_inputs``). hypothesis shrinks towards the edges by itself: single inputs,
single chains, two draws, repeated values, constant columns, blocks and chunks of one input.

The references are written out here: ``np.cov`` for pooled K, the per-chain sum of outer
products for per-chain K, and R from the reference K with zero rows where the reference
variance is 0. The profile (``tests/conftest.py``) is derandomized, so every run tries the same
examples; ``--hypothesis-profile=thorough`` tries 1000 random ones per property.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from losskernel.method import kernel

FLOAT32_RELATIVE = 1e-5  # as test_kernel.py: a float32 dot product of S terms, S <= 48 here
FLOAT64_RELATIVE = 1e-12


@st.composite
def loss_traces(draw, max_chains: int = 3, max_draws: int = 12, max_inputs: int = 10):
    """``losses (chain, draw, N)`` on the grid of eighths, some inputs made constant."""
    shape = (draw(st.integers(1, max_chains)), draw(st.integers(2, max_draws)),
             draw(st.integers(1, max_inputs)))
    eighths = draw(arrays(np.int64, shape, elements=st.integers(-1000, 1000)))
    constant = draw(arrays(bool, shape[-1]))
    eighths[:, :, constant] = eighths[:1, :1, constant]
    return eighths / 8.0


def reference_covariance(losses: np.ndarray, centring: str) -> np.ndarray:
    num_chains, num_draws, num_inputs = losses.shape
    if centring == "pooled":
        stacked = losses.reshape(-1, num_inputs)
        return np.atleast_2d(np.cov(stacked, rowvar=False))
    centred = losses - losses.mean(axis=1, keepdims=True)
    return np.einsum("cti,ctj->ij", centred, centred) / (num_chains * num_draws - num_chains)


def reference_correlation(covariance: np.ndarray) -> np.ndarray:
    variance = np.diag(covariance)
    varies = variance > 0
    scale = np.where(varies, 1 / np.sqrt(np.where(varies, variance, 1)), 0)
    correlation = covariance * np.outer(scale, scale)
    np.fill_diagonal(correlation, varies)
    return correlation


def assert_close(actual: np.ndarray, expected: np.ndarray, variances: np.ndarray,
                 precision: str) -> None:
    """Entry by entry within the precision's relative error of ``sqrt(K_ii K_jj)``."""
    relative = FLOAT64_RELATIVE if precision == "float64" else FLOAT32_RELATIVE
    scale = np.sqrt(np.outer(variances, variances))
    np.testing.assert_array_less(np.abs(actual - expected), relative * scale + 1e-300)


centrings = st.sampled_from(kernel.CENTRINGS)
precisions = st.sampled_from(["float32", "float64"])
block_sizes = st.integers(1, 8)


@given(loss_traces(), centrings, precisions, block_sizes)
def test_covariance_kernel_is_the_sample_covariance(losses, centring, precision, block_inputs):
    expected = reference_covariance(losses, centring)
    actual = kernel.covariance_kernel(losses, centring, precision, block_inputs=block_inputs)
    assert actual.dtype == np.dtype(precision)
    assert_close(actual, expected, np.diag(expected), precision)


@given(loss_traces(), centrings, precisions, block_sizes)
def test_covariance_kernel_is_symmetric_and_positive_semidefinite(
        losses, centring, precision, block_inputs):
    covariance = kernel.covariance_kernel(losses, centring, precision, block_inputs=block_inputs)
    np.testing.assert_array_equal(covariance, covariance.T)
    # An eigenvalue moves by at most the spectral norm of the rounding error, below N times
    # the largest entry's error.
    relative = FLOAT64_RELATIVE if precision == "float64" else FLOAT32_RELATIVE
    bound = len(covariance) * relative * np.diag(covariance).astype(np.float64).max()
    assert np.linalg.eigvalsh(covariance.astype(np.float64)).min() >= -bound


@given(loss_traces(), centrings, precisions, block_sizes, st.integers(1, 8))
def test_correlation_kernel_is_the_normalized_sample_covariance(
        losses, centring, precision, block_inputs, chunk_columns):
    covariance = reference_covariance(losses, centring)
    expected = reference_correlation(covariance)
    actual = kernel.correlation_kernel(losses, centring, precision, block_inputs=block_inputs,
                                       chunk_columns=chunk_columns)
    varies = np.diag(covariance) > 0
    np.testing.assert_array_equal(actual, actual.T)
    np.testing.assert_array_equal(np.diag(actual), varies.astype(actual.dtype))
    np.testing.assert_array_equal(actual[~varies], 0)  # zero rows (and so columns) if constant
    assert np.abs(actual).max(initial=0) <= 1
    assert_close(actual, expected, varies.astype(float), precision)


@given(loss_traces(), centrings,
       st.data())
def test_correlation_is_invariant_to_affine_maps_of_each_input_up_to_their_signs(
        losses, centring, data):
    """``l_i -> a_i l_i + b_i`` multiplies ``R_ij`` by ``sign(a_i) sign(a_j)`` (i != j)."""
    num_inputs = losses.shape[-1]
    magnitude = data.draw(arrays(float, num_inputs, elements=st.floats(0.1, 10)))
    sign = data.draw(arrays(bool, num_inputs)) * 2.0 - 1.0
    offset = data.draw(arrays(float, num_inputs, elements=st.floats(-100, 100)))
    before = kernel.correlation_kernel(losses, centring, "float64")
    after = kernel.correlation_kernel(sign * magnitude * losses + offset, centring, "float64")
    expected = before * np.outer(sign, sign)
    np.fill_diagonal(expected, np.diag(before))
    np.testing.assert_allclose(after, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", kernel.KERNEL_KINDS)
@given(losses=loss_traces(max_inputs=4))
def test_compute_kernel_is_the_kernel_of_its_kind(kind, losses):
    expected = reference_covariance(losses, "pooled")
    if kind == "correlation":
        expected = reference_correlation(expected)
    actual = kernel.compute_kernel(losses, kind, precision="float64")
    np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
