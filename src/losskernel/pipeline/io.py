"""What the steps share: tables, models and checkpoints on disk, threads, the tasks' data."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from losskernel.provenance import atomic_path, reading, verify_zip, write_tsv
from losskernel.readings import metrics_table
from losskernel.tasks.protocol import Task

if TYPE_CHECKING:  # torch is imported by the steps that need it (start-up time)
    import torch

PathLike = str | os.PathLike
Record = Mapping[str, str | int]
Files = Mapping[str, Any]
"""A job's input or output files by name: a path, or a list of paths."""


def read_tsv(path: PathLike) -> pd.DataFrame:
    """A table written by ``provenance.write_tsv`` (its ``#`` header is skipped); a file that
    cannot be read raises ``UnreadableFileError`` naming it and the fix."""
    with reading(path):
        return pd.read_csv(path, sep="\t", comment="#")


def write_metrics(values: Mapping[str, float], path: PathLike, record: Record) -> None:
    write_tsv(metrics_table(values), path, record)


def load_input(path: PathLike) -> Any:
    """A file as the readings take it: ``traces.nc`` as a trace dataset, ``kernel-*.nc`` as a
    kernel dataset, any other ``.nc`` as a dataset, a ``.tsv`` as a table."""
    import xarray as xr

    from losskernel.method.kernel import load_kernel
    from losskernel.method.traces import load_traces

    path = Path(path)
    if path.suffix == ".nc" and path.name == "traces.nc":
        return load_traces(path)
    if path.suffix == ".nc":
        return load_kernel(path) if path.name.startswith("kernel-") else xr.load_dataset(
            path, engine="netcdf4")
    if path.suffix == ".tsv":
        return read_tsv(path)
    raise ValueError(f"{path}: cannot load a {path.suffix!r} file as an input of a reading")


def load_inputs(inputs: Files) -> dict[str, Any]:
    """Every input loaded with :func:`load_input`; a list of paths gives a list."""
    return {name: [load_input(path) for path in paths] if isinstance(paths, list | tuple)
            else load_input(paths) for name, paths in inputs.items()}


def data_settings(task: Task, data: Mapping, inputs: Files) -> dict[str, Any]:
    """The task's data settings with the path of each of its data files at its key."""
    return {**data, **{data_file.key: str(inputs[data_file.key]) for data_file in task.DATA_FILES}}


def set_threads(threads: int) -> None:
    """Match torch's intra-op threads to the job's cores (oversubscription costs up to 4x)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))


def save_model(task: str, settings: Mapping, record: Record, step: int | None,
               state: Mapping, checkpoints: Mapping[int, Mapping], outputs: Files) -> None:
    """``model.pt`` (final weights) and ``checkpoints.pt`` (step -> weights), each with the
    task, the data and model settings that rebuild the model, and the provenance record."""
    import torch

    header = {"task": task, "data": dict(settings["data"]), "model": dict(settings["model"]),
              "provenance": dict(record)}
    with atomic_path(outputs["model"]) as partial:
        torch.save({**header, "step": step, "state_dict": dict(state)}, partial)
    with atomic_path(outputs["checkpoints"]) as partial:
        torch.save({**header, "checkpoints": dict(checkpoints)}, partial)


def load_saved(path: PathLike) -> dict[str, Any]:
    """The content of a ``model.pt`` or ``checkpoints.pt``, its archive's checksums verified
    first (torch loads one with overwritten bytes without a word); a file that cannot be read
    raises ``UnreadableFileError`` naming it and the fix."""
    import torch

    with reading(path):
        verify_zip(path)
        return torch.load(path, weights_only=False)


def load_model(task: Task, task_name: str, data: Mapping, model_path: PathLike,
               built_data: object, checkpoint_step: int | None = None) -> torch.nn.Module:
    """Rebuild a saved model, refusing one of another task or trained on other data.

    ``model_path`` is a ``model.pt`` (final weights) or, with ``checkpoint_step``, a
    ``checkpoints.pt`` from which that training step's weights are taken; ``data`` is the
    configured data section, ``built_data`` the task's data built from it.
    """
    saved = load_saved(model_path)
    if saved["task"] != task_name:
        raise ValueError(f"{model_path} holds a {saved['task']!r} model, expected {task_name!r}")
    if saved["data"] != dict(data):
        raise ValueError(f"{model_path} was trained on data {saved['data']}, not on the "
                         f"configured {dict(data)}; retrain it or fix the config")
    model = task.build_model(saved["model"], built_data)
    state = (saved["state_dict"] if checkpoint_step is None
             else saved["checkpoints"][checkpoint_step])
    model.load_state_dict(state)
    return model.train(False)


def checkpoint_steps(checkpoints_path: PathLike) -> list[int]:
    """The training steps saved in a ``checkpoints.pt``, in order."""
    return sorted(load_saved(checkpoints_path)["checkpoints"])


def select_checkpoints(saved_steps: Sequence[int], num: int) -> list[int]:
    """``num`` of the saved steps at evenly spaced positions, first and last included.

    The saved steps are log-spaced, so the selection is too: initialization, a few early steps
    where most change happens, and the end of training.
    """
    steps = sorted(saved_steps)
    if not 2 <= num <= len(steps):
        raise ValueError(f"cannot select {num} checkpoints from the {len(steps)} saved; set "
                         f"analysis.trajectory.num_checkpoints to at most training.num_checkpoints")
    positions = np.round(np.linspace(0, len(steps) - 1, num)).astype(int)
    return [steps[position] for position in positions]


def warn(message: str, label: str = "WARNING") -> None:
    """A warning in the job's log and on the terminal that runs the workflow (a rule's log
    replaces the step's stdout and stderr; the original stderr is Snakemake's terminal)."""
    line = f"{label}: {message}"
    print(line, flush=True)
    if sys.stderr is not sys.__stderr__:
        print(line, file=sys.__stderr__, flush=True)
