"""The loss kernel and its normalized form, from loss traces.

Notation: ``losses[c, t, i] = l(z_i; w_{c,t})`` for chain ``c``, draw ``t`` and kernel input ``i``.
Stacking chains and draws gives ``S = C * T`` samples of the loss vector of the ``N`` inputs.

    Lc = L - mean_s L                 (pooled centring; per-chain: subtract each chain's own mean)
    K  = Lc^T Lc / (S - d)            d = 1 (pooled) or C (per-chain), unbiased either way
    R_ij = K_ij / sqrt(K_ii K_jj),    R_ij = 0 where K_ii = 0 or K_jj = 0

K is one matrix product on the centred losses; R is K rescaled by the standard deviations.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

Centring = Literal["pooled", "per_chain"]
KernelKind = Literal["covariance", "correlation"]
CENTRINGS: tuple[str, ...] = ("pooled", "per_chain")
KERNEL_KINDS: tuple[str, ...] = ("covariance", "correlation")


def centre_losses(losses: np.ndarray, centring: Centring = "pooled") -> np.ndarray:
    """Stack ``losses (chain, draw, N)`` into ``(S, N)`` float64 and centre each input's column.

    ``pooled`` subtracts the mean over all ``S = chain * draw`` samples; ``per_chain`` subtracts
    each chain's own mean, which removes between-chain differences (an ablation).
    """
    if losses.ndim != 3:
        raise ValueError(f"losses must have dims (chain, draw, obs_id), got shape {losses.shape}")
    if centring not in CENTRINGS:
        raise ValueError(f"centring must be one of {CENTRINGS}, got {centring!r}")
    values = np.asarray(losses, dtype=np.float64)
    if centring == "pooled":
        values = values - values.mean(axis=(0, 1), keepdims=True)
    else:
        values = values - values.mean(axis=1, keepdims=True)
    return values.reshape(-1, values.shape[-1])


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


def covariance_kernel(losses: np.ndarray, centring: Centring = "pooled") -> np.ndarray:
    """The loss kernel ``K = Lc^T Lc / dof``, shape ``(N, N)``, from ``losses (chain, draw, N)``."""
    num_chains, num_draws, _ = losses.shape
    dof = degrees_of_freedom(num_chains, num_draws, centring)
    centred = centre_losses(losses, centring)
    return (centred.T @ centred) / dof


def correlation_from_covariance(covariance: np.ndarray) -> np.ndarray:
    """``R_ij = K_ij / sqrt(K_ii K_jj)``, with ``R_ij = 0`` where either variance is 0."""
    std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    scale = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0)
    correlation = covariance * scale[:, None] * scale[None, :]
    return np.clip(correlation, -1.0, 1.0)


def compute_kernel(
    losses: np.ndarray, kind: KernelKind = "correlation", centring: Centring = "pooled"
) -> np.ndarray:
    """The covariance kernel K or the normalized kernel R from ``losses (chain, draw, N)``."""
    if kind not in KERNEL_KINDS:
        raise ValueError(f"kind must be one of {KERNEL_KINDS}, got {kind!r}")
    covariance = covariance_kernel(losses, centring)
    return covariance if kind == "covariance" else correlation_from_covariance(covariance)


def kernel_dataset(
    traces: xr.Dataset, kind: KernelKind = "correlation", centring: Centring = "pooled"
) -> xr.Dataset:
    """The kernel of a trace dataset as ``kernel(obs_id, obs_id_2)`` with the traces' coordinates.

    Non-index coordinates on ``obs_id`` (task, label, ...) are carried over; the second axis
    ``obs_id_2`` holds the same ids so that ``kernel.sel(obs_id=a, obs_id_2=b)`` reads K(a, b).
    """
    losses = traces["loss"].transpose("chain", "draw", "obs_id").values
    values = compute_kernel(losses, kind=kind, centring=centring)
    obs_id = traces["obs_id"].values
    obs_coords = {name: coord for name, coord in traces["loss"].coords.items()
                  if coord.dims == ("obs_id",)}
    kernel = xr.DataArray(
        values.astype(np.float32),
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
    validate_kernel(dataset)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    dataset.to_netcdf(path, engine="netcdf4", encoding={"kernel": {"zlib": True, "complevel": 4}})


def load_kernel(path: str | os.PathLike) -> xr.Dataset:
    with xr.open_dataset(path, engine="netcdf4") as dataset:
        loaded = dataset.load()
    validate_kernel(loaded)
    return loaded
