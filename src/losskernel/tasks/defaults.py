"""Default implementations of the task hooks most tasks do not need.

A task module imports them, so that it has every member of
:class:`losskernel.tasks.protocol.Task`, and defines below the import the ones it does
differently (a definition replaces the imported default)::

    from losskernel.tasks.defaults import *  # noqa: F403 - the default hooks of the contract
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

    from losskernel.method.chains import IndexedData
    from losskernel.tasks.protocol import DataSource, Pretrained, TaskData


def check_files(settings: Mapping) -> None:
    """The settings name no file."""


def data_sources(settings: Mapping) -> tuple[DataSource, ...]:
    """The task makes its data itself (or reads only its declared data files)."""
    return ()


def pretrained(model_settings: Mapping) -> Pretrained | None:
    """The model is always trained here."""
    return None


def load_weights(model: nn.Module, path: str) -> None:
    raise NotImplementedError("this task trains its model; it loads no pretrained weights")


def available_checkpoints(settings: Mapping) -> int:
    """The distinct checkpoints training saves: ``training.num_checkpoints`` log-spaced steps
    up to ``training.max_steps``, fewer where a short run's steps collide."""
    from losskernel.schedule import log_spaced_steps

    training = settings["training"]
    return len(log_spaced_steps(training["max_steps"], training["num_checkpoints"]))


def monitor_set(data: TaskData) -> IndexedData | None:
    """Training reports its loss on the whole training set."""
    return None


def count_kernel_inputs(settings: Mapping) -> tuple[int, str]:
    """Build the data and select the kernel inputs (cheap for data that fits in memory)."""
    task = _task_of(settings)
    inputs = task.select_kernel_inputs(task.make_data(settings["data"]), settings["kernel_inputs"])
    return len(inputs), "counted from the data"


def timing_example(settings: Mapping, size: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The task's model, and its first ``size`` kernel inputs (repeated if there are fewer):
    builds the data, so only for data that is at hand."""
    import torch

    task = _task_of(settings)
    data = task.make_data(settings["data"])
    kernel_inputs = data.tensors(task.select_kernel_inputs(data, settings["kernel_inputs"]))
    inputs, targets = kernel_inputs[torch.arange(size) % len(kernel_inputs)]
    return task.build_model(settings["model"], data), inputs, targets


def _task_of(settings: Mapping):
    from losskernel.tasks import load_task

    return load_task(settings["task"])


__all__ = [
    "available_checkpoints",
    "check_files",
    "count_kernel_inputs",
    "data_sources",
    "load_weights",
    "monitor_set",
    "pretrained",
    "timing_example",
]
