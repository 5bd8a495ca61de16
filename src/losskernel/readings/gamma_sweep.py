"""The γ sweep: how the kernel changes with the localization γ of SGLD.

CKA between the kernels K at every pair of localizations, and the neighbour lift of attributes
(class, ink, place in a taxonomy) under R at each γ.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel.readings import obs_table
from losskernel.readings.hierarchy import hierarchy_lift
from losskernel.readings.neighbours import neighbour_lift
from losskernel.readings.similarity import linear_cka

if TYPE_CHECKING:
    import xarray as xr

SIMILARITIES: dict[str, Callable[[np.ndarray], np.ndarray]] = {"R": lambda R: R, "absR": np.abs}
"""What the sweep's neighbours can be nearest under, from R."""
EDGE_RULES: tuple[str, ...] = ("none", "same_output")
"""Neighbour graphs of the γ sweep: every edge, and same-output edges removed (the paper's map)."""


def gamma_sweep(
    localizations: Sequence[float], covariances: Sequence[np.ndarray],
    correlations: Sequence[xr.Dataset],
    excluded_edges: Callable[[pd.DataFrame, str], np.ndarray | None], knn_k: int,
    attributes: Sequence[str], similarities: Sequence[str] = ("R",),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CKA between the kernels K of every pair of γ; neighbour lift under R at each γ.

    ``covariances`` are the values of K and ``correlations`` the kernel datasets of R, one per
    γ of ``localizations``; ``excluded_edges(inputs, rule)`` is the task's edge rule and
    ``attributes`` name per-input columns (e.g. ``true_label``, ``ink_bin``). Lift of the
    ``knn_k`` nearest neighbours is computed on the full neighbour graph and with same-output
    edges removed (``EDGE_RULES``); removing them removes the class signal by construction, so
    what is left there is structure beyond the shared output logit. The attribute
    ``wordnet_path`` (a place in a tree, not a category) gets the hierarchy lift instead: mean
    depth of the lowest common ancestor of neighbours over that of candidate pairs
    (:func:`losskernel.readings.hierarchy.hierarchy_lift`). ``similarities`` names what the
    neighbours are nearest under: ``R``, and ``absR`` = ``|R|`` (strong anti-correlation as
    closeness).

    Returns the CKA table (``gamma_a, gamma_b, cka``, every ordered pair) and the lift table
    (``gamma, similarity, edges, attribute, purity, chance, lift``).
    """
    cka_rows = [{"gamma_a": gamma_a, "gamma_b": gamma_b,
                 "cka": linear_cka(covariances[a], covariances[b])}
                for a, gamma_a in enumerate(localizations)
                for b, gamma_b in enumerate(localizations)]
    lift_rows = []
    for gamma, correlation in zip(localizations, correlations, strict=True):
        inputs, R = obs_table(correlation), correlation["kernel"].values
        for similarity, rule in itertools.product(similarities, EDGE_RULES):
            kernel, excluded = SIMILARITIES[similarity](R), excluded_edges(inputs, rule)
            for attribute in attributes:
                if attribute == "wordnet_path":
                    purity, chance, lift = hierarchy_lift(
                        kernel, inputs[attribute].tolist(), knn_k, excluded)
                else:
                    purity, chance, lift = neighbour_lift(
                        kernel, inputs[attribute].to_numpy(), knn_k, excluded)
                lift_rows.append({"gamma": gamma, "similarity": similarity, "edges": rule,
                                  "attribute": attribute, "purity": purity, "chance": chance,
                                  "lift": lift})
    return pd.DataFrame(cka_rows), pd.DataFrame(lift_rows)


def noise_ceiling(gamma: float, seeds: Sequence[int], covariances: Sequence[np.ndarray],
                  correlations: Sequence[np.ndarray]) -> pd.DataFrame:
    """The CKA between two runs at one γ that differ only by their SGLD seed: of K, of R and
    of ``|R|``. No two γ's kernels can agree more than the Monte-Carlo noise lets two runs at
    the same γ agree, so this is the ceiling of the sweep's CKA (a row per similarity:
    ``gamma, seed_a, seed_b, similarity, cka``)."""
    pairs = {"K": covariances, "R": correlations,
             "absR": [np.abs(matrix) for matrix in correlations]}
    return pd.DataFrame([{"gamma": gamma, "seed_a": seeds[0], "seed_b": seeds[1],
                          "similarity": name, "cka": linear_cka(first, second)}
                         for name, (first, second) in pairs.items()])
