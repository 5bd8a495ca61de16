"""Readings of the loss kernel, as pure functions: arrays, tables and datasets in, tables out.

Nothing here reads or writes a file or stamps provenance; the pipeline's steps load the inputs,
call a reading and write what it returns. Heavy libraries (scikit-learn, umap, torch) are
imported inside the functions that need them.

- ``neighbours``: nearest neighbours under a kernel (blocked, or from the traces under R) and
  the neighbour lift of an attribute.
- ``separation``: task separation (pairwise and kNN-vote ROC-AUC, block means, the cross-task
  covariance test); ``task_separation`` reads one kernel.
- ``similarity``: linear CKA between two kernels.
- ``convergence``: CKA of the kernel of the first t draws against the kernel of all draws.
- ``mislabels``: K(z, z) as a score for flipped labels, beside baselines that need no SGLD.
- ``gamma_sweep``: CKA between the kernels at every pair of localizations, neighbour lift at each.
- ``trajectory``: a structure score at each training checkpoint, and its gain.
- ``hierarchy``: kernels against a class taxonomy (LCA depths, tree distances, taxonomic lift).
- ``embedding``: UMAP maps of the inputs from the distances of R.
- ``summary``: every metric of every seed in one table, the headline rows, the paper's macros.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    import xarray as xr


def obs_table(dataset: xr.Dataset) -> pd.DataFrame:
    """The per-input coordinates of a trace or kernel dataset as a table with ``obs_id``."""
    columns = {name: coord.values for name, coord in dataset.coords.items()
               if coord.dims == ("obs_id",)}
    return pd.DataFrame(columns)


def metrics_table(values: Mapping[str, float]) -> pd.DataFrame:
    """A (metric, value) table, one row per entry of ``values`` in its order."""
    return pd.DataFrame({"metric": list(values), "value": list(values.values())})
