"""Steps of the sampling: one SGLD chain of a run, resumable after a kill; a run's chains in
one trace file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from losskernel.method.traces import load_traces, make_trace_dataset, merge_traces, save_traces
from losskernel.pipeline.io import (
    Files,
    Record,
    checkpoint_steps,
    data_settings,
    load_model,
    select_checkpoints,
    set_threads,
)
from losskernel.tasks import load_task

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr


def sample_chain(
    inputs: Files, outputs: Files, *, task: str, settings: Mapping[str, Any], seed: int,
    sampling: Mapping[str, Any], checkpoint: Mapping[str, int] | None, chains: Sequence[int],
    state_dir: str, record: Record, threads: int = 1, progress: bool = True,
    save_every_seconds: float = 60.0,
) -> None:
    """The ``chains`` of a run's SGLD around a trained model (input ``model``), side by side on
    ``threads`` cores; write their per-sample loss traces of the kernel inputs (output
    ``traces``).

    ``settings`` holds the task's ``data`` and ``kernel_inputs``, ``sampling`` the run's
    sampling section and ``seed`` its seed. Every chain runs on one torch thread, whichever
    job runs it and beside whichever others, so chain c of seed s has the same traces bit for
    bit however many chains a job runs (config key ``chains_per_job``). Without
    ``checkpoint`` the model is the final ``model.pt``; with ``{"index": i,
    "num_checkpoints": n}`` it is a ``checkpoints.pt`` and SGLD is localized at the i-th of n
    checkpoints chosen by ``select_checkpoints``.

    Each chain saves its progress to ``<state_dir>/chain<c>.state.pt`` every
    ``save_every_seconds`` and on SIGTERM, then stops; run again, it resumes from the saved
    draw with identical results on the CPU. The state files are deleted once the traces are
    written.
    """
    from losskernel.method.parallel import sample_chains
    from losskernel.method.resume import Resumable, stop_on_sigterm

    set_threads(1)  # one torch thread per chain: the same arithmetic in every job layout
    prepared = _prepare(inputs, task, settings, seed, sampling, checkpoint)
    stop = stop_on_sigterm()
    states = {chain: Path(state_dir) / f"chain{chain}.state.pt" for chain in chains}
    resumables = {chain: Resumable(state, save_every_seconds, stop)
                  for chain, state in states.items()}
    traces = sample_chains(
        prepared.model, prepared.loss_fn, prepared.train_data, prepared.input_data,
        prepared.config, chains=list(chains), strata=prepared.strata, progress=progress,
        device=sampling["device"], resumable=resumables.__getitem__,
        parallel_chains=max(1, min(threads, len(chains))))
    save_traces(_trace_dataset(prepared, traces, record), outputs["traces"])
    for state in states.values():
        state.unlink(missing_ok=True)


def sample_traces(inputs: Files, *, task: str, settings: Mapping[str, Any], seed: int,
                  sampling: Mapping[str, Any], threads: int = 1) -> tuple[xr.Dataset, int]:
    """Every chain of a short run around the final ``model``, in this process and not
    resumable (the calibration's points), as a trace dataset; with the number of classes
    the model outputs (its loss at chance is the log of that)."""
    from losskernel.method.parallel import sample_chains

    set_threads(threads)
    prepared = _prepare(inputs, task, settings, seed, sampling, None)
    traces = sample_chains(prepared.model, prepared.loss_fn, prepared.train_data,
                           prepared.input_data, prepared.config, strata=prepared.strata,
                           progress=False, device=sampling["device"])
    return _trace_dataset(prepared, traces, {}), prepared.num_classes


@dataclass
class _Prepared:
    """What a run's sampling needs: the model at its localization, the data, the settings."""

    model: Any
    loss_fn: Any
    train_data: Any
    strata: Any
    kernel_inputs: pd.DataFrame
    input_data: Any
    config: Any
    checkpoint_step: int | None

    @property
    def num_classes(self) -> int:
        """The width of the model's output (its logits) on one kernel input."""
        import torch

        inputs, _ = self.input_data[torch.arange(1)]
        with torch.no_grad():
            return int(self.model(inputs).shape[-1])


def _prepare(inputs: Files, task: str, settings: Mapping[str, Any], seed: int,
             sampling: Mapping[str, Any], checkpoint: Mapping[str, int] | None) -> _Prepared:
    from losskernel.method.losses import cross_entropy_per_sample
    from losskernel.method.sgld import SGLDConfig

    module = load_task(task)
    data = module.make_data(data_settings(module, settings["data"], inputs))
    step = None if checkpoint is None else select_checkpoints(
        checkpoint_steps(inputs["model"]), checkpoint["num_checkpoints"])[checkpoint["index"]]
    model = load_model(module, task, settings["data"], inputs["model"], data, step)
    train_data, strata = module.training_split(data)
    kernel_inputs = module.select_kernel_inputs(data, settings["kernel_inputs"])
    config = SGLDConfig(seed=seed, **{key: value for key, value in sampling.items()
                                      if key in SGLDConfig.__dataclass_fields__})
    return _Prepared(model, cross_entropy_per_sample, train_data,
                     strata if sampling["stratify_by_task"] else None, kernel_inputs,
                     data.tensors(kernel_inputs), config, step)


def _trace_dataset(prepared: _Prepared, traces: Mapping, record: Record) -> xr.Dataset:
    """The sampled chains with the loss at w* and the inputs' coordinates."""
    from losskernel.method.chains import evaluate_per_sample_losses

    init_loss = evaluate_per_sample_losses(prepared.model, prepared.loss_fn, prepared.input_data,
                                           prepared.config.eval_batch_size).numpy()
    inputs = prepared.kernel_inputs
    coords = {name: inputs[name].to_numpy() for name in inputs.columns if name != "obs_id"}
    attrs = dict(record) if prepared.checkpoint_step is None else {
        **record, "checkpoint_step": prepared.checkpoint_step}
    return make_trace_dataset(traces, init_loss, inputs["obs_id"].to_numpy(), prepared.config,
                              obs_coords=coords, attrs=attrs)


def merge_chains(inputs: Files, outputs: Files, *, record: Record) -> None:
    """One trace file (``traces``) from the per-chain files of a run (``chains``, in order;
    values unchanged)."""
    dataset = merge_traces([load_traces(path) for path in inputs["chains"]])
    dataset.attrs.update(record)
    save_traces(dataset, outputs["traces"])
