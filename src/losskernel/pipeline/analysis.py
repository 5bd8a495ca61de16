"""Steps of the readings: load the kernels and traces, call ``losskernel.readings``, write
the tables (convergence per run, mislabels per seed, the γ sweep, the trajectory and UMAP per
experiment, and the tasks' own readings)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from losskernel.method.kernel import load_kernel
from losskernel.method.traces import load_traces, trace_losses
from losskernel.pipeline.io import (
    Files,
    Record,
    data_settings,
    load_inputs,
    load_model,
    load_saved,
    read_tsv,
    set_threads,
    write_metrics,
)
from losskernel.provenance import atomic_path, write_tsv
from losskernel.tasks import load_task
from losskernel.tasks.protocol import resolve_callable


def convergence(inputs: Files, outputs: Files, *, centring: str, num_points: int,
                record: Record) -> None:
    """CKA of the kernel of the first t draws (of every chain) against the final kernel, at
    about ``num_points`` t (``curve``), and the halves' CKAs (``metrics``)."""
    from losskernel.readings.convergence import convergence as convergence_of

    losses = trace_losses(load_traces(inputs["traces"]))
    curve, values = convergence_of(losses, centring, num_points)
    write_tsv(curve, outputs["curve"], record)
    write_metrics(values, outputs["metrics"], record)


def mislabel_baselines(inputs: Files, outputs: Files, *, task: str, settings: Mapping[str, Any],
                       mislabels: Mapping[str, Any], record: Record, threads: int = 1) -> None:
    """Per-input mislabel scores that need no SGLD (``scores``): the loss at w* (input
    ``model``), under Gaussian weight noise, and over the training checkpoints (input
    ``checkpoints``); see ``losskernel.readings.mislabels.perturbation_baselines``."""
    import torch

    from losskernel.method.chains import evaluate_per_sample_losses
    from losskernel.method.losses import cross_entropy_per_sample
    from losskernel.readings.mislabels import perturbation_baselines

    set_threads(threads)
    module = load_task(task)
    data = module.make_data(data_settings(module, settings["data"], inputs))
    kernel_inputs = module.select_kernel_inputs(data, settings["kernel_inputs"])
    input_data = data.tensors(kernel_inputs)

    def losses_of(model: torch.nn.Module) -> np.ndarray:
        return evaluate_per_sample_losses(model, cross_entropy_per_sample, input_data,
                                          mislabels["eval_batch_size"]).numpy()

    model = load_model(module, task, settings["data"], inputs["model"], data)
    checkpoints = load_saved(inputs["checkpoints"])["checkpoints"]
    table = perturbation_baselines(losses_of, model, checkpoints,
                                   kernel_inputs["obs_id"].to_numpy(), mislabels["noise_scales"],
                                   mislabels["noise_draws"], mislabels["seed"])
    write_tsv(table, outputs["scores"], record)


def mislabel_detection(inputs: Files, outputs: Files, *, record: Record) -> None:
    """K(z, z) of one seed (``covariance``, ``traces``) as the score of a flipped label, beside
    every baseline (``baselines``): ``metrics`` and per-input ``scores``."""
    from losskernel.readings.mislabels import mislabel_readings

    values, scores = mislabel_readings(load_kernel(inputs["covariance"]),
                                       load_traces(inputs["traces"]), read_tsv(inputs["baselines"]))
    write_metrics(values, outputs["metrics"], record)
    write_tsv(scores, outputs["scores"], record)


def gamma_sweep(inputs: Files, outputs: Files, *, task: str, gamma_sweep: Mapping[str, Any],
                replica: Mapping[str, Any], record: Record) -> None:
    """CKA between the kernels K of every pair of γ (``cka``) and the neighbour lift of the
    sweep's attributes under R at each γ (``lift``), from each γ's ``covariance`` and
    ``correlation`` kernel in the order of ``gamma_sweep.localizations``; the noise ceiling of
    the CKA (``ceiling``) from the two runs at γ = ``replica.gamma`` that differ only by their
    seeds ``replica.seeds`` (``replica_covariance``, ``replica_correlation``)."""
    from losskernel.readings.gamma_sweep import gamma_sweep as sweep
    from losskernel.readings.gamma_sweep import noise_ceiling

    covariances = [load_kernel(path)["kernel"].values for path in inputs["covariance"]]
    correlations = [load_kernel(path) for path in inputs["correlation"]]
    cka, lift = sweep(gamma_sweep["localizations"], covariances, correlations,
                      load_task(task).excluded_edges, gamma_sweep["knn_k"],
                      gamma_sweep["attributes"], gamma_sweep["similarities"])
    ceiling = noise_ceiling(
        replica["gamma"], replica["seeds"],
        [load_kernel(path)["kernel"].values for path in inputs["replica_covariance"]],
        [load_kernel(path)["kernel"].values for path in inputs["replica_correlation"]])
    write_tsv(cka, outputs["cka"], record)
    write_tsv(lift, outputs["lift"], record)
    write_tsv(ceiling, outputs["ceiling"], record)


def trajectory(inputs: Files, outputs: Files, *, task: str, knn_k: int | None,
               hierarchy: Mapping[str, Any] | None, record: Record) -> None:
    """The task's structure score at each checkpoint's kernels (``covariance``,
    ``correlation``, in training order) as ``table``, and its gain as ``metrics``."""
    from losskernel.readings.trajectory import trajectory as trajectory_of

    module = load_task(task)

    def score(covariance: np.ndarray, correlation: np.ndarray, kernel_inputs) -> float:
        return module.structure_score(covariance, correlation, kernel_inputs,
                                      {"knn_k": knn_k, "hierarchy": hierarchy})

    table, values = trajectory_of([load_kernel(path) for path in inputs["covariance"]],
                                  [load_kernel(path) for path in inputs["correlation"]],
                                  score, module.STRUCTURE_SCORE)
    write_tsv(table, outputs["table"], record)
    write_metrics(values, outputs["metrics"], record)


def embed_umap(inputs: Files, outputs: Files, *, task: str, umap: Mapping[str, Any],
               record: Record) -> None:
    """2-D UMAPs of the ``correlation`` kernels (the figure seed's, then the trajectory's),
    the first also in the dimensions of ``umap.dimensions``, as one table ``embedding``."""
    from losskernel.readings.embedding import embed_kernels

    kernels = [(Path(path).parent.name, load_kernel(path)) for path in inputs["correlation"]]
    write_tsv(embed_kernels(kernels, umap, load_task(task).excluded_edges),
              outputs["embedding"], record)


def input_features(inputs: Files, outputs: Files, *, task: str, settings: Mapping[str, Any],
                   eval_batch_size: int, device: str, record: Record, threads: int = 1) -> None:
    """The kernel inputs' pixels, penultimate activations and output probabilities under the
    trained model (input ``model``) as one dataset ``features`` (``losskernel.method.features``),
    dims ``(obs_id, pixel | unit | class)``, with the inputs' coordinates."""
    import xarray as xr

    from losskernel.method.features import input_features as features_of

    set_threads(threads)
    module = load_task(task)
    data = module.make_data(data_settings(module, settings["data"], inputs))
    kernel_inputs = module.select_kernel_inputs(data, settings["kernel_inputs"])
    model = load_model(module, task, settings["data"], inputs["model"], data)
    features = features_of(model, data.tensors(kernel_inputs), eval_batch_size, device=device)
    coords = {"obs_id": kernel_inputs["obs_id"].to_numpy(), **{
        name: ("obs_id", kernel_inputs[name].to_numpy()) for name in module.INPUT_ATTRIBUTES}}
    dataset = xr.Dataset({name: (("obs_id", dim), values) for (name, values), dim in zip(
        features.items(), ("pixel", "unit", "class"), strict=True)}, coords=coords,
        attrs=dict(record))
    with atomic_path(outputs["features"]) as partial:
        dataset.to_netcdf(partial, engine="netcdf4")


def score_reading(inputs: Files, outputs: Files, *, task: str, reading: str,
                  settings: Mapping[str, Any], record: Record) -> None:
    """A task's own reading of one seed (a :class:`~losskernel.tasks.protocol.Reading`): its
    declared inputs loaded, its tables written, the metrics table to ``metrics``."""
    module = load_task(task)
    declaration = next(r for r in module.READINGS if r.name == reading)
    tables = resolve_callable(declaration.compute)(module, settings, **load_inputs(inputs))
    for name, path in outputs.items():
        write_tsv(tables[name], path, record)
