"""The development of the kernel over training: a structure score at each checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel.readings import obs_table
from losskernel.readings.separation import pairwise_separation_auc

if TYPE_CHECKING:
    import xarray as xr


def trajectory(
    covariances: Sequence[xr.Dataset], correlations: Sequence[xr.Dataset],
    structure_score: Callable[[np.ndarray, np.ndarray, pd.DataFrame], float],
    structure_score_name: str,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The task's structure score at each checkpoint (in training order) and its gain.

    ``covariances`` and ``correlations`` are the kernel datasets of K and R at each checkpoint,
    in training order, each with the attr ``checkpoint_step``; ``structure_score(K, R, inputs)``
    is the task's score and ``structure_score_name`` its name. Beside it, the naive score that
    counts same-output pairs (ROC-AUC of R_ij for pairs with the same output against the rest):
    those pairs share an output logit, so it is high already at initialization and says nothing
    about learned structure.

    Returns the table (``checkpoint, step, structure_score, same_output_pair_auc,
    structure_score_name``) and the metrics ``trajectory_gain`` (last score minus first),
    ``structure_score_first`` and ``structure_score_last``.
    """
    rows = []
    for index, (covariance, correlation) in enumerate(
            zip(covariances, correlations, strict=True)):
        inputs = obs_table(correlation)
        K, R = covariance["kernel"].values, correlation["kernel"].values
        rows.append({
            "checkpoint": index, "step": int(correlation.attrs["checkpoint_step"]),
            "structure_score": structure_score(K, R, inputs),
            "same_output_pair_auc": pairwise_separation_auc(R, inputs["label"].to_numpy()),
        })
    table = pd.DataFrame(rows)
    first, last = table["structure_score"].iloc[0], table["structure_score"].iloc[-1]
    values = {"trajectory_gain": last - first, "structure_score_first": first,
              "structure_score_last": last}
    return table.assign(structure_score_name=structure_score_name), values
