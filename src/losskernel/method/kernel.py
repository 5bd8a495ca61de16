"""The loss kernel and its normalized form, from loss traces.

Notation: ``losses[c, t, i] = l(z_i; w_{c,t})`` for chain ``c``, draw ``t`` and kernel input ``i``.
Stacking chains and draws gives ``S = C * T`` samples of the loss vector of the ``N`` inputs.

    Lc = L - mean_s L                 (pooled centring; per-chain: subtract each chain's own mean)
    K  = Lc^T Lc / (S - d)            d = 1 (pooled) or C (per-chain), unbiased either way
    R_ij = K_ij / sqrt(K_ii K_jj),    R_ij = 0 where input i or j is constant

An input is constant when its losses do not vary beyond rounding: their peak-to-peak is at most
a few units in the last place of their largest magnitude (:func:`constant_inputs`). Testing
``K_ii = 0`` is not enough: the centred column of a constant float64 loss holds the rounding
residue of its mean, which would standardize to a column of ±1/sqrt(S) and give R = ±1 with
every other constant input.

K is one matrix product on the centred losses. R is one matrix product on the standardized
losses ``Z = Lc / ||Lc||`` (columns of unit norm), ``R = Z^T Z``, with no N x N pass to rescale.

Centring and scaling run in float64; the product runs in float32 by default. It is symmetric,
so only the blocks on and above the diagonal are multiplied (half the work of a general matrix
product of the same shape) and the rest are their transposes (``benchmarks/RESULTS.md``); the
result is exactly symmetric on every CPU, the diagonal blocks included (:func:`_gram`). Its
error is that of a float32 dot product of S terms, about 1e-6 relative to ``sqrt(K_ii K_jj)``;
``precision="float64"`` is the reference.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import xarray as xr

from losskernel.method.traces import trace_losses
from losskernel.provenance import atomic_path, reading

Centring = Literal["pooled", "per_chain"]
KernelKind = Literal["covariance", "correlation"]
Precision = Literal["float32", "float64"]
CENTRINGS: tuple[str, ...] = ("pooled", "per_chain")
KERNEL_KINDS: tuple[str, ...] = ("covariance", "correlation")
BLOCK_INPUTS = 512
"""Inputs per block row of the matrix product (:func:`_gram`)."""
CHUNK_COLUMNS = 4096
"""Inputs standardized at a time in float64 for R (:func:`standardized_losses`)."""


def centre_losses(
    losses: np.ndarray, centring: Centring = "pooled", dtype: np.dtype | type = np.float64
) -> np.ndarray:
    """Stack ``losses (chain, draw, N)`` into ``(S, N)`` and centre each input's column.

    ``pooled`` subtracts the mean over all ``S = chain * draw`` samples; ``per_chain`` subtracts
    each chain's own mean, which removes between-chain differences (an ablation). Means and
    differences are taken in float64 whatever the output ``dtype``.
    """
    if losses.ndim != 3:
        raise ValueError(f"losses must have dims (chain, draw, obs_id), got shape {losses.shape}")
    if centring not in CENTRINGS:
        raise ValueError(f"centring must be one of {CENTRINGS}, got {centring!r}")
    axes = (0, 1) if centring == "pooled" else 1
    means = np.mean(losses, axis=axes, dtype=np.float64, keepdims=True)
    centred = np.empty(losses.shape, dtype=dtype)
    np.subtract(losses, means, out=centred, dtype=np.float64, casting="unsafe")
    return centred.reshape(-1, losses.shape[-1])


def degrees_of_freedom(num_chains: int, num_draws: int, centring: Centring) -> int:
    """Samples minus estimated means: ``S - 1`` pooled, ``S - C`` per chain."""
    lost = 1 if centring == "pooled" else num_chains
    dof = num_chains * num_draws - lost
    if dof < 1:
        raise ValueError(
            f"need more samples than estimated means: {num_chains} chains x {num_draws} draws "
            f"with {centring} centring leaves {dof} degrees of freedom"
        )
    return dof


def _gram(columns: np.ndarray, block_inputs: int = BLOCK_INPUTS) -> np.ndarray:
    """``columns^T columns`` for ``columns (S, N)``, in the dtype of ``columns``, exactly
    symmetric on every CPU.

    Block row ``i`` (``block_inputs`` inputs) is multiplied from the diagonal rightwards, one matrix
    product on views of ``columns``; the blocks below the diagonal are copies of their
    transposes. The diagonal block comes from a general matrix product, whose ``(a, b)`` and
    ``(b, a)`` entries are two dot products that BLAS may sum in different orders (they
    differed in the last bit on some CPUs), so its lower triangle is replaced by the mirror of
    its upper one: ``O(N * block_inputs)`` copies against the product's ``O(N^2 * S)`` work.

    This does the half of the work that BLAS's syrk (numpy's ``X.T @ X``) does, without
    syrk's element-by-element mirror of the other triangle. On this project's 2-core CPU that
    was 1.6-2.3x faster than syrk for N = 4096, S = 800, and 1.1x for N = 10000, S = 2000
    (section 3 of ``benchmarks/RESULTS.md``). The mirror of the diagonal blocks took no
    measurable time at N = 10000, S = 2000 (``benchmarks/kernel_symmetry.py``).
    """
    if block_inputs < 1:
        raise ValueError(f"block_inputs must be a positive number of inputs, got {block_inputs}")
    num_inputs = columns.shape[1]
    gram = np.empty((num_inputs, num_inputs), dtype=columns.dtype)
    for start in range(0, num_inputs, block_inputs):
        stop = min(start + block_inputs, num_inputs)
        np.matmul(columns[:, start:stop].T, columns[:, start:], out=gram[start:stop, start:])
        diagonal = gram[start:stop, start:stop]
        np.copyto(diagonal, diagonal.T.copy(), where=np.tri(stop - start, k=-1, dtype=bool))
        gram[stop:, start:stop] = gram[start:stop, stop:].T
    return gram


def _check_precision(precision: str) -> np.dtype:
    if precision not in ("float32", "float64"):
        raise ValueError(f"precision must be 'float32' or 'float64', got {precision!r}")
    return np.dtype(precision)


def covariance_kernel(
    losses: np.ndarray, centring: Centring = "pooled", precision: Precision = "float32", *,
    block_inputs: int = BLOCK_INPUTS,
) -> np.ndarray:
    """The loss kernel ``K = Lc^T Lc / dof``, shape ``(N, N)``, from ``losses (chain, draw, N)``.

    Exactly symmetric. ``block_inputs`` sets the blocks of the product (:func:`_gram`); it
    changes the rounding of the entries, never their symmetry."""
    dtype = _check_precision(precision)
    num_chains, num_draws, _ = losses.shape
    dof = degrees_of_freedom(num_chains, num_draws, centring)
    centred = centre_losses(losses, centring, dtype)
    centred *= dtype.type(1 / np.sqrt(dof))  # on the S x N operand, not on the N x N result
    return _gram(centred, block_inputs)


ROUNDING_ULPS = 4
"""A column whose peak-to-peak is at most this many units in the last place of its largest
magnitude is constant."""


def constant_inputs(losses: np.ndarray) -> np.ndarray:
    """Which inputs of ``losses (chain, draw, N)`` never vary: peak-to-peak at most
    ``ROUNDING_ULPS`` units in the last place (of the losses' dtype) of the largest ``|loss|``."""
    flat = np.asarray(losses).reshape(-1, np.shape(losses)[-1])
    dtype = flat.dtype if np.issubdtype(flat.dtype, np.floating) else np.dtype(np.float64)
    highest = flat.max(axis=0).astype(np.float64)
    lowest = flat.min(axis=0).astype(np.float64)
    largest = np.maximum(np.abs(highest), np.abs(lowest))
    return highest - lowest <= ROUNDING_ULPS * np.finfo(dtype).eps * largest


def standardized_losses(
    losses: np.ndarray, centring: Centring = "pooled", dtype: np.dtype | type = np.float32,
    chunk_columns: int = CHUNK_COLUMNS,
) -> tuple[np.ndarray, np.ndarray]:
    """``Z = Lc / ||Lc||`` column by column, shape ``(S, N)`` in ``dtype``, so that ``R = Z^T Z``;
    and which inputs vary (not :func:`constant_inputs`; the other columns of Z are 0).

    Centring, norms and scaling run in float64 a chunk of columns at a time (each column is
    centred on its own), so the float64 temporaries are ``S x chunk_columns``, not ``S x N``.
    """
    if chunk_columns < 1:
        raise ValueError(f"chunk_columns must be a positive number of inputs, got {chunk_columns}")
    num_chains, num_draws, num_inputs = losses.shape
    standardized = np.empty((num_chains * num_draws, num_inputs), dtype=dtype)
    varies = np.empty(num_inputs, dtype=bool)
    for start in range(0, num_inputs, chunk_columns):
        columns = slice(start, start + chunk_columns)
        centred = centre_losses(losses[:, :, columns], centring)
        norms = np.sqrt(np.einsum("sn,sn->n", centred, centred))
        varying = ~constant_inputs(losses[:, :, columns]) & (norms > 0)
        varies[columns] = varying
        standardized[:, columns] = np.where(varying, centred / np.where(varying, norms, 1.0), 0.0)
    return standardized, varies


def correlation_kernel(
    losses: np.ndarray, centring: Centring = "pooled", precision: Precision = "float32", *,
    block_inputs: int = BLOCK_INPUTS, chunk_columns: int = CHUNK_COLUMNS,
) -> np.ndarray:
    """The normalized kernel ``R = Z^T Z`` with ``Z = Lc / ||Lc||`` column by column.

    A constant input (:func:`constant_inputs`) has ``R_ij = 0`` for every j, itself included,
    as in :func:`correlation_from_covariance`; every other diagonal entry is 1. Exactly
    symmetric; ``block_inputs`` (:func:`_gram`) and ``chunk_columns``
    (:func:`standardized_losses`) bound the memory and change only the rounding.
    """
    dtype = _check_precision(precision)
    num_chains, num_draws, _ = losses.shape
    degrees_of_freedom(num_chains, num_draws, centring)  # the same check as for K
    standardized, varies = standardized_losses(losses, centring, dtype, chunk_columns)
    correlation = _gram(standardized, block_inputs)
    np.clip(correlation, -1.0, 1.0, out=correlation)
    np.fill_diagonal(correlation, varies.astype(dtype))
    return correlation


def correlation_from_covariance(covariance: np.ndarray) -> np.ndarray:
    """``R_ij = K_ij / sqrt(K_ii K_jj)``, with ``R_ij = 0`` where either variance is 0."""
    std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    scale = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0)
    correlation = covariance * scale[:, None] * scale[None, :]
    return np.clip(correlation, -1.0, 1.0)


def compute_kernel(
    losses: np.ndarray, kind: KernelKind = "correlation", centring: Centring = "pooled",
    precision: Precision = "float32", *, block_inputs: int = BLOCK_INPUTS,
    chunk_columns: int = CHUNK_COLUMNS,
) -> np.ndarray:
    """The covariance kernel K or the normalized kernel R from ``losses (chain, draw, N)``,
    exactly symmetric (the block sizes: :func:`correlation_kernel`)."""
    if kind not in KERNEL_KINDS:
        raise ValueError(f"kind must be one of {KERNEL_KINDS}, got {kind!r}")
    if kind == "covariance":
        return covariance_kernel(losses, centring, precision, block_inputs=block_inputs)
    return correlation_kernel(losses, centring, precision, block_inputs=block_inputs,
                              chunk_columns=chunk_columns)


def kernel_dataset(
    traces: xr.Dataset, kind: KernelKind = "correlation", centring: Centring = "pooled"
) -> xr.Dataset:
    """The kernel of a trace dataset as ``kernel(obs_id, obs_id_2)`` with the traces' coordinates.

    Non-index coordinates on ``obs_id`` (task, label, ...) are carried over; the second axis
    ``obs_id_2`` holds the same ids so that ``kernel.sel(obs_id=a, obs_id_2=b)`` reads K(a, b).
    """
    losses = trace_losses(traces)
    values = compute_kernel(losses, kind=kind, centring=centring)
    obs_id = traces["obs_id"].values
    obs_coords = {name: coord for name, coord in traces["loss"].coords.items()
                  if coord.dims == ("obs_id",)}
    kernel = xr.DataArray(
        values.astype(np.float32, copy=False),
        dims=("obs_id", "obs_id_2"),
        coords={**obs_coords, "obs_id_2": obs_id},
    )
    return xr.Dataset(
        {"kernel": kernel},
        attrs={
            "kind": kind,
            "centring": centring,
            "num_chains": int(traces.sizes["chain"]),
            "num_draws": int(traces.sizes["draw"]),
            "constant_inputs": int(constant_inputs(losses).sum()),
            # where the draws came from: the SGLD settings and, for a trajectory, the step
            **{key: value for key, value in traces.attrs.items()
               if key.startswith("sgld_") or key == "checkpoint_step"},
        },
    )


def validate_kernel(dataset: xr.Dataset) -> None:
    """Raise ``ValueError`` naming the first way ``dataset`` departs from the kernel schema:
    ``kernel(obs_id, obs_id_2)`` square with identical ids, attrs ``kind`` and ``centring``."""
    if "kernel" not in dataset:
        raise ValueError("kernel dataset lacks the variable 'kernel'")
    if dataset["kernel"].dims != ("obs_id", "obs_id_2"):
        raise ValueError(f"kernel has dims {dataset['kernel'].dims}, "
                         f"expected ('obs_id', 'obs_id_2')")
    if not np.array_equal(dataset["obs_id"].values, dataset["obs_id_2"].values):
        raise ValueError("kernel coordinates obs_id and obs_id_2 differ")
    if dataset.attrs.get("kind") not in KERNEL_KINDS:
        raise ValueError(f"kernel attr 'kind' must be one of {KERNEL_KINDS}, "
                         f"got {dataset.attrs.get('kind')!r}")
    if dataset.attrs.get("centring") not in CENTRINGS:
        raise ValueError(f"kernel attr 'centring' must be one of {CENTRINGS}, "
                         f"got {dataset.attrs.get('centring')!r}")


def save_kernel(dataset: xr.Dataset, path: str | os.PathLike) -> None:
    """Write a kernel dataset, whole or not at all (``atomic_path``), with a checksum."""
    validate_kernel(dataset)
    encoding = {"kernel": {"zlib": True, "complevel": 4, "fletcher32": True}}
    with atomic_path(path) as partial:
        dataset.to_netcdf(partial, engine="netcdf4", encoding=encoding)


def load_kernel(path: str | os.PathLike) -> xr.Dataset:
    """Read and validate a kernel dataset; a file that cannot be read raises
    ``UnreadableFileError`` naming it and the fix."""
    with reading(path), xr.open_dataset(path, engine="netcdf4") as dataset:
        loaded = dataset.load()
    validate_kernel(loaded)
    return loaded
