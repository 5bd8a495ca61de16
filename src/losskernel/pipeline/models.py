"""Steps of the models: train one, accept it, describe it, import pretrained weights, make a
task's data file, record the outside data a task reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from losskernel.pipeline.io import (
    Files,
    Record,
    data_settings,
    read_tsv,
    save_model,
    set_threads,
    warn,
    write_metrics,
)
from losskernel.provenance import canonical_json, read_provenance, write_tsv
from losskernel.tasks import load_task
from losskernel.tasks.protocol import resolve_callable


def train_model(inputs: Files, outputs: Files, *, task: str, settings: Mapping[str, Any],
                record: Record, threads: int = 1, progress: bool = True) -> None:
    """Train the task's model (``settings``: data, model, training); write the final weights
    (``model``), the log-spaced checkpoints (``checkpoints``) and the history (``history``).

    A task whose training set is too large to evaluate whole reports its loss on its
    ``monitor_set``. Inputs: the task's data files. The provenance of every output records
    ``training``: whether the model met its convergence target, its final step,
    ``max_steps`` and its number of parameters; a model that did not is warned about here,
    and the gate (:func:`accept_model`) stops the run before it is sampled unless
    ``training.allow_unconverged``.
    """
    from losskernel.method.losses import cross_entropy_per_sample_float64
    from losskernel.training import train_adamw, training_config_from_settings

    set_threads(threads)
    module, training = load_task(task), settings["training"]
    data = module.make_data(data_settings(module, settings["data"], inputs))
    train_data, _ = module.training_split(data)
    model = module.build_model(settings["model"], data)
    num_parameters = sum(parameter.numel() for parameter in model.parameters())
    result = train_adamw(
        model, cross_entropy_per_sample_float64,
        train_data,
        training_config_from_settings(training),
        evaluate=lambda model: module.evaluate(model, data),
        is_converged=lambda metrics: module.is_converged(metrics, training), progress=progress,
        monitor=module.monitor_set(data), device=training["device"],
    )
    outcome = {**result.outcome(training["max_steps"]), "num_parameters": num_parameters}
    record = {**record, "training": canonical_json(outcome)}
    if result.converged is False:
        warn(f"the {task} model did not meet its convergence target in training.max_steps = "
             f"{training['max_steps']} steps (see {outputs['history']}); raise max_steps or "
             f"set training.allow_unconverged: true to use it knowingly")
    save_model(task, settings, record, result.final_step, result.checkpoints[result.final_step],
               result.checkpoints, outputs)
    write_tsv(result.history, outputs["history"], record)


def accept_model(inputs: Files, outputs: Files, *, experiment: str, allow_unconverged: bool,
                 record: Record) -> None:
    """The gate between training and sampling: the trained ``model`` met its convergence
    target (its provenance's ``training`` record), or ``allow_unconverged`` lets it through.
    Writes the ``verdict`` (a row of ``losskernel.readings.checks.converged``) or raises
    ``CheckFailed`` before any sampling job starts. The gate is its own job so that a refused
    model's file stays (Snakemake deletes a failed job's outputs)."""
    from losskernel.errors import CheckFailed
    from losskernel.readings.checks import checks_table, converged

    model = str(inputs["model"])
    table = checks_table(converged(experiment, model, True, read_provenance(model)
                                   .get("training"), allow_unconverged))
    if not bool(table["passed"].iloc[0]):
        message = (f"{experiment}: model refused before sampling: {table['reason'].iloc[0]} "
                   f"(the model file is kept)")
        warn(message, label="MODEL REFUSED")  # in the job's log and on the terminal
        raise CheckFailed(message)
    write_tsv(table, outputs["verdict"], record)


def describe_model(inputs: Files, outputs: Files, *, record: Record) -> None:
    """The trained model's own metrics (``metrics``): its number of parameters (the training
    record of the ``history``'s provenance) and the last row's ``train_accuracy`` and
    ``test_accuracy`` of its training ``history`` (``losskernel.readings.checks.model_metrics``)."""
    from losskernel.readings.checks import model_metrics

    history = str(inputs["history"])
    write_metrics(model_metrics(read_tsv(history), read_provenance(history).get("training")),
                  outputs["metrics"], record)


def import_model(inputs: Files, outputs: Files, *, task: str, settings: Mapping[str, Any],
                 record: Record) -> None:
    """Pretrained weights (input ``weights``) and the user's own training checkpoints (input
    ``training_checkpoints``, steps from ``task.pretrained``) as ``model`` and ``checkpoints``.

    Each file is loaded into the task's model strictly, so a wrong architecture fails here,
    not in the middle of sampling.
    """
    module = load_task(task)
    model = module.build_model(settings["model"], None)

    def weights_of(path: str) -> dict:
        try:
            module.load_weights(model, path)
        except RuntimeError as error:
            raise ValueError(f"{path} does not fit the task's model ({task}): "
                             f"{str(error)[:500]}") from None
        return {name: tensor.clone() for name, tensor in model.state_dict().items()}

    pretrained = module.pretrained(settings["model"])
    checkpoints = {step: weights_of(path) for step, path in pretrained.checkpoints}
    final = weights_of(str(inputs["weights"]))
    save_model(task, settings, record, None, final, checkpoints, outputs)


def make_data_file(inputs: Files, outputs: Files, *, task: str, file: str,
                   settings: Mapping[str, Any], record: Record) -> None:
    """The task's data file ``file`` (a :class:`~losskernel.tasks.protocol.DataFile`) as the
    table ``table``; its notes join the provenance record."""
    declaration = next(data_file for data_file in load_task(task).DATA_FILES
                       if data_file.key == file)
    table, notes = resolve_callable(declaration.make)(settings)
    write_tsv(table, outputs["table"], {**record, **notes})


def record_data(inputs: Files, outputs: Files, *, source: str, origin: str, files: list[str],
                tree: str, tree_stamp: str, record: Record) -> None:
    """The manifest (``manifest``) of the data source ``source``: its single ``files`` and
    every file under the directory ``tree``, each with its size, sha256 and origin (the Debian
    package that installed it, else ``origin``; :mod:`losskernel.manifest`). A tree's hashes
    are cached beside the manifest and reused while a file's size and modification time are
    unchanged. ``tree_stamp`` (those sizes and times when the job was planned) is for
    Snakemake's params trigger and the record."""
    import pandas as pd

    from losskernel.manifest import files_manifest, hash_cache_path, tree_manifest

    tables = []
    if files:
        tables.append(files_manifest(source, files, origin))
    if tree:
        tables.append(tree_manifest(source, tree, origin, hash_cache_path(outputs["manifest"])))
    write_tsv(pd.concat(tables, ignore_index=True), outputs["manifest"], record)
