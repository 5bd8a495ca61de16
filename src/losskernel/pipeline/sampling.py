"""Steps of the sampling: one SGLD chain of a run, resumable after a kill; a run's chains in
one trace file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


def sample_chain(
    inputs: Files, outputs: Files, *, task: str, settings: Mapping[str, Any], seed: int,
    sampling: Mapping[str, Any], checkpoint: Mapping[str, int] | None, chain: int,
    state_dir: str, record: Record, threads: int = 1, progress: bool = True,
    save_every_seconds: float = 60.0,
) -> None:
    """Chain ``chain`` of a run's SGLD around a trained model (input ``model``); write the
    per-sample loss traces of the kernel inputs (output ``traces``).

    ``settings`` holds the task's ``data`` and ``kernel_inputs``, ``sampling`` the run's
    sampling section and ``seed`` its seed (chain c of seed s is the same chain however many
    chains a job runs). Without ``checkpoint`` the model is the final ``model.pt``; with
    ``{"index": i, "num_checkpoints": n}`` it is a ``checkpoints.pt`` and SGLD is localized at
    the i-th of n checkpoints chosen by ``select_checkpoints``.

    The chain saves its progress to ``<state_dir>/chain<c>.state.pt`` every
    ``save_every_seconds`` and on SIGTERM, then stops; run again, it resumes from the saved
    draw with identical results on the CPU. The state file is deleted once the traces are
    written.
    """
    from losskernel.method.chains import evaluate_per_sample_losses
    from losskernel.method.losses import cross_entropy_per_sample
    from losskernel.method.parallel import sample_chains
    from losskernel.method.resume import Resumable, stop_on_sigterm
    from losskernel.method.sgld import SGLDConfig

    set_threads(threads)
    module = load_task(task)
    data = module.make_data(data_settings(module, settings["data"], inputs))
    step = None if checkpoint is None else select_checkpoints(
        checkpoint_steps(inputs["model"]), checkpoint["num_checkpoints"])[checkpoint["index"]]
    model = load_model(module, task, settings["data"], inputs["model"], data, step)
    train_data, strata = module.training_split(data)
    kernel_inputs = module.select_kernel_inputs(data, settings["kernel_inputs"])
    input_data = data.tensors(kernel_inputs)
    config = SGLDConfig(seed=seed, **{key: value for key, value in sampling.items()
                                      if key in SGLDConfig.__dataclass_fields__})
    state = Path(state_dir) / f"chain{chain}.state.pt"
    resumable = Resumable(state, save_every_seconds, stop_on_sigterm())
    traces = sample_chains(
        model, cross_entropy_per_sample, train_data, input_data, config, chains=[chain],
        strata=strata if sampling["stratify_by_task"] else None, progress=progress,
        device=sampling["device"], resumable=lambda _: resumable)
    init_loss = evaluate_per_sample_losses(model, cross_entropy_per_sample, input_data,
                                           config.eval_batch_size).numpy()
    coords = {name: kernel_inputs[name].to_numpy() for name in kernel_inputs.columns
              if name != "obs_id"}
    attrs = dict(record) if step is None else {**record, "checkpoint_step": step}
    save_traces(make_trace_dataset(traces, init_loss, kernel_inputs["obs_id"].to_numpy(), config,
                                   obs_coords=coords, attrs=attrs), outputs["traces"])
    state.unlink(missing_ok=True)


def merge_chains(inputs: Files, outputs: Files, *, record: Record) -> None:
    """One trace file (``traces``) from the per-chain files of a run (``chains``, in order;
    values unchanged)."""
    dataset = merge_traces([load_traces(path) for path in inputs["chains"]])
    dataset.attrs.update(record)
    save_traces(dataset, outputs["traces"])
