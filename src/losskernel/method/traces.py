"""The trace dataset: per-sample losses under SGLD, with dims (chain, draw, obs_id).

Schema (ArviZ naming; ``sample`` is reserved for stacked chain × draw)::

    loss(chain, draw, obs_id)     float32  per-sample loss of each kernel input at each draw
    init_loss(obs_id)             float32  loss at the trained weights w*
    batch_loss(chain, draw)       float32  minibatch loss of the SGLD step that made the draw
    distance(chain, draw)         float32  ||w - w*|| at the draw
    coords: chain (int), draw (int), obs_id (str), and any per-input coords on obs_id
            (task, label, ...)
    attrs:  the SGLD settings (prefixed ``sgld_``) plus provenance; netCDF-legal scalars only

This module owns the schema: ``validate_traces`` is the one place that checks it, and
``save_traces`` / ``load_traces`` are the only netCDF round trip.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from losskernel.provenance import atomic_path, reading

if TYPE_CHECKING:  # the sampler imports torch; reading traces must not
    from losskernel.method.chains import ChainTrace
    from losskernel.method.sgld import SGLDConfig

NETCDF_ENGINE = "netcdf4"
TRACE_VARIABLES: dict[str, tuple[str, ...]] = {
    "loss": ("chain", "draw", "obs_id"),
    "init_loss": ("obs_id",),
    "batch_loss": ("chain", "draw"),
    "distance": ("chain", "draw"),
}


def make_trace_dataset(
    chains: Mapping[int, ChainTrace],
    init_loss: np.ndarray,
    obs_id: np.ndarray,
    config: SGLDConfig,
    obs_coords: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, str | int | float] | None = None,
) -> xr.Dataset:
    """Assemble sampled chains into a validated trace dataset."""
    chain_ids = sorted(chains)

    def stack(field: str) -> np.ndarray:
        return np.stack([getattr(chains[chain], field) for chain in chain_ids])

    coords: dict[str, object] = {
        "chain": np.asarray(chain_ids, dtype=np.int64),
        "draw": np.arange(config.num_draws, dtype=np.int64),
        "obs_id": np.asarray(obs_id, dtype=str),
    }
    for name, values in (obs_coords or {}).items():
        coords[name] = ("obs_id", np.asarray(values))
    dataset = xr.Dataset(
        {
            "loss": (TRACE_VARIABLES["loss"], stack("loss").astype(np.float32)),
            "init_loss": (TRACE_VARIABLES["init_loss"], np.asarray(init_loss, np.float32)),
            "batch_loss": (TRACE_VARIABLES["batch_loss"], stack("batch_loss").astype(np.float32)),
            "distance": (TRACE_VARIABLES["distance"], stack("distance").astype(np.float32)),
        },
        coords=coords,
        attrs={
            **{f"sgld_{key}": value for key, value in config.as_dict().items()},
            **(attrs or {}),
        },
    )
    validate_traces(dataset)
    return dataset


def validate_traces(dataset: xr.Dataset) -> None:
    """Raise ``ValueError`` naming the first way ``dataset`` departs from the trace schema."""
    for name, dims in TRACE_VARIABLES.items():
        if name not in dataset:
            raise ValueError(f"trace dataset lacks variable {name!r} (expected dims {dims})")
        if dataset[name].dims != dims:
            raise ValueError(f"trace variable {name!r} has dims {dataset[name].dims}, "
                             f"expected {dims}")
    if not np.isfinite(dataset["loss"].values).all():
        raise ValueError("trace variable 'loss' holds NaN or inf values")
    obs_id = dataset["obs_id"].values
    if len(np.unique(obs_id)) != len(obs_id):
        raise ValueError("obs_id values must be unique")
    for key, value in dataset.attrs.items():
        if not isinstance(value, str | int | float | np.integer | np.floating):
            raise ValueError(f"attribute {key!r} must be a str, int or float for netCDF, "
                             f"got {type(value).__name__}")


def trace_losses(dataset: xr.Dataset) -> np.ndarray:
    """The per-sample losses of a trace dataset as an array ``(chain, draw, obs_id)``."""
    return dataset["loss"].transpose(*TRACE_VARIABLES["loss"]).values


def merge_traces(datasets: list[xr.Dataset]) -> xr.Dataset:
    """The chains of several trace datasets of one run in one dataset, ordered by chain.

    They must share the kernel inputs, the draws and the SGLD settings; the loss at w*
    (``init_loss``, the same computation in every job) is taken from the first.
    """
    first = datasets[0]
    settings = {k: v for k, v in first.attrs.items() if k.startswith("sgld_")}
    for dataset in datasets[1:]:
        if not np.array_equal(dataset["obs_id"].values, first["obs_id"].values):
            raise ValueError("trace files to merge hold different kernel inputs")
        if {k: v for k, v in dataset.attrs.items() if k.startswith("sgld_")} != settings:
            raise ValueError("trace files to merge were sampled with different SGLD settings")
    chains = [int(c) for d in datasets for c in d["chain"].values]
    if len(set(chains)) != len(chains):
        raise ValueError(f"trace files to merge repeat a chain: {sorted(chains)}")
    per_chain = [d.drop_vars("init_loss") for d in datasets]
    merged = xr.concat(per_chain, dim="chain", data_vars="minimal", coords="minimal",
                       compat="override", combine_attrs="override").sortby("chain")
    merged["init_loss"] = first["init_loss"]
    merged.attrs = dict(first.attrs)
    validate_traces(merged)
    return merged


def save_traces(dataset: xr.Dataset, path: str | os.PathLike) -> None:
    """Write a trace dataset to netCDF4 with zlib compression, after validating it, whole or
    not at all (``atomic_path``); each variable carries a Fletcher-32 checksum."""
    validate_traces(dataset)
    # The per-sample losses are left uncompressed: their float64 mantissas are noise, so zlib
    # saved 20% of the bytes at 15x the write time (benchmarks/RESULTS.md, section 2). Without
    # compression nothing else would notice overwritten bytes, hence the checksum.
    encoding = {name: {"zlib": name != "loss", "complevel": 4, "shuffle": True,
                       "fletcher32": True} for name in TRACE_VARIABLES}
    with atomic_path(path) as partial:
        dataset.to_netcdf(partial, engine=NETCDF_ENGINE, encoding=encoding)


def load_traces(path: str | os.PathLike) -> xr.Dataset:
    """Read and validate a trace dataset written by ``save_traces``; a file that cannot be
    read raises ``UnreadableFileError`` naming it and the fix."""
    with reading(path), xr.open_dataset(path, engine=NETCDF_ENGINE) as dataset:
        loaded = dataset.load()
    validate_traces(loaded)
    return loaded
