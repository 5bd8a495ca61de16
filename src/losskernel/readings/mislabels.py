"""Flipped labels: K(z, z) as a score, beside honest baselines that need no SGLD.

The baselines are the loss at w*, the loss under isotropic Gaussian weight noise, the per-sample
loss over the training checkpoints (``perturbation_baselines``), and the SGLD posterior mean
loss (from the traces, in ``mislabel_readings``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from losskernel.readings import obs_table
from losskernel.readings.separation import roc_auc_score

if TYPE_CHECKING:
    import torch
    import xarray as xr


def mislabel_readings(covariance: xr.Dataset, traces: xr.Dataset,
                      baselines: pd.DataFrame) -> tuple[dict[str, float], pd.DataFrame]:
    """K(z, z) as the score of a flipped label, beside every baseline.

    ``covariance`` is the kernel dataset of K (with the coordinate ``mislabeled``), ``traces``
    the trace dataset it came from, ``baselines`` a table with ``obs_id`` and one score column
    per baseline (any row order, every kernel input present).

    Metrics: ``mislabel_roc_auc`` (flipped = positive), ``self_cov_mislabeled`` and
    ``self_cov_normal`` (mean K(z, z) of each group), ``self_cov_ratio`` (their ratio), and
    ``baseline_roc_auc_<score>`` for the SGLD posterior mean loss and every column of the
    baselines table. ``baseline_roc_auc_noise_{variance,mean}_best`` is the best over the noise
    scales σ: σ is chosen with the labels, which favours the baseline, never the kernel.
    Scores: ``obs_id``, ``mislabeled``, ``self_cov``, ``posterior_mean_loss`` and the baselines'
    columns, in the kernel's order.
    """
    inputs = obs_table(covariance)
    scores = inputs[["obs_id", "mislabeled"]].assign(
        self_cov=np.diag(covariance["kernel"].values).astype(np.float64))
    losses = traces["loss"]
    if not np.array_equal(losses["obs_id"].values, inputs["obs_id"].to_numpy()):
        raise ValueError("the traces and the covariance kernel hold different kernel inputs "
                         "(obs_id differ); recompute the kernel from these traces")
    scores["posterior_mean_loss"] = losses.mean(dim=("chain", "draw")).values.astype(np.float64)
    scores = scores.merge(baselines, on="obs_id", how="left", validate="one_to_one")
    missing = scores.loc[scores.isna().any(axis=1), "obs_id"].tolist()
    if missing:
        raise ValueError(f"the baselines table does not cover the kernel inputs: {len(missing)} "
                         f"of {len(scores)} lack a value (first: {missing[:3]}); recompute the "
                         f"baselines for the inputs of this kernel")
    return _mislabel_metrics(scores), scores


def _mislabel_metrics(scores: pd.DataFrame) -> dict[str, float]:
    """The metrics of :func:`mislabel_readings` from its scores table."""
    flipped = scores["mislabeled"].to_numpy().astype(bool)
    self_cov = scores["self_cov"].to_numpy()
    values = {
        "mislabel_roc_auc": float(roc_auc_score(flipped, self_cov)),
        "self_cov_mislabeled": float(self_cov[flipped].mean()),
        "self_cov_normal": float(self_cov[~flipped].mean()),
    }
    values["self_cov_ratio"] = values["self_cov_mislabeled"] / values["self_cov_normal"]
    for column in scores.columns.drop(["obs_id", "mislabeled", "self_cov"]):
        values[f"baseline_roc_auc_{column}"] = float(roc_auc_score(flipped, scores[column]))
    for statistic in ("noise_variance", "noise_mean"):
        per_sigma = [value for key, value in values.items()
                     if key.startswith(f"baseline_roc_auc_{statistic}_sigma")]
        if per_sigma:
            values[f"baseline_roc_auc_{statistic}_best"] = max(per_sigma)
    return values


def mislabel_baseline_curves(values: Mapping[str, float]) -> dict[str, str]:
    """The baselines the ROC figure draws, as {score column: legend name}: every baseline, with
    the Gaussian-noise scores at their best σ only (all σ are in the metrics table)."""
    curves = {"posterior_mean_loss": "SGLD posterior mean loss",
              "loss_at_optimum": "loss at w*"}
    for statistic in ("variance", "mean"):
        best = values.get(f"baseline_roc_auc_noise_{statistic}_best")
        sigmas = [key.removeprefix("baseline_roc_auc_") for key, value in values.items()
                  if key.startswith(f"baseline_roc_auc_noise_{statistic}_sigma") and value == best]
        if sigmas:
            sigma = sigmas[0].rsplit("_sigma", 1)[1]
            curves[sigmas[0]] = f"loss {statistic}, Gaussian weight noise σ={sigma}"
    curves |= {"history_loss_mean": "loss mean over training checkpoints",
               "history_loss_variance": "loss variance over training checkpoints"}
    return {column: name for column, name in curves.items()
            if f"baseline_roc_auc_{column}" in values}


def perturbation_baselines(
    losses_of: Callable[[torch.nn.Module], np.ndarray], model: torch.nn.Module,
    checkpoints: Mapping[int, dict], obs_id: np.ndarray, noise_scales: Sequence[float],
    noise_draws: int, seed: int,
) -> pd.DataFrame:
    """Per-input scores for flipped labels that need no SGLD, one column each.

    ``losses_of(module)`` is the per-sample loss of the kernel inputs (in the order of
    ``obs_id``) under a module; ``model`` holds the trained weights w*; ``checkpoints`` maps
    training steps to state dicts.

    - ``loss_at_optimum``: the loss at w*;
    - ``noise_variance_sigma{σ}`` / ``noise_mean_sigma{σ}``: variance / mean of the loss over
      ``noise_draws`` draws of isotropic Gaussian weight noise N(0, σ²) around w*, for each σ
      of ``noise_scales``; the noise is drawn from one torch generator seeded with ``seed``;
    - ``history_loss_mean`` / ``history_loss_variance``: the loss over the training checkpoints,
      in step order.

    The perturbed weights and the checkpoints go into one copy of ``model``; ``model`` itself is
    left as it is.
    """
    import torch

    table = pd.DataFrame({"obs_id": np.asarray(obs_id)}).assign(
        loss_at_optimum=losses_of(model))
    generator = torch.Generator().manual_seed(seed)
    probe = copy.deepcopy(model)  # one copy, overwritten with w* + σ ξ at every draw
    for sigma in noise_scales:
        draws = []
        for _ in range(noise_draws):
            with torch.no_grad():
                for perturbed, optimum in zip(probe.parameters(), model.parameters(),
                                              strict=True):
                    perturbed.copy_(optimum).add_(
                        torch.randn(optimum.shape, generator=generator), alpha=sigma)
            draws.append(losses_of(probe))
        table[f"noise_variance_sigma{sigma:g}"] = np.var(draws, axis=0, ddof=1)
        table[f"noise_mean_sigma{sigma:g}"] = np.mean(draws, axis=0)
    history = []
    for step in sorted(checkpoints):
        probe.load_state_dict(checkpoints[step])  # every weight and buffer of the checkpoint
        history.append(losses_of(probe))
    table["history_loss_mean"] = np.mean(history, axis=0)
    table["history_loss_variance"] = np.var(history, axis=0, ddof=1)
    return table
