"""The experiments of the paper. Each module knows its data, models and task-specific readings.

A task module provides ``make_data(settings)``, ``build_model(settings, data)``,
``training_split(data) -> (TensorData, strata)``, ``select_kernel_inputs(data, settings)``
(a table with an ``obs_id`` column), ``accuracy_by_task(model, data)`` and
``is_converged(metrics, training_settings)``, ``excluded_edges(inputs, rule)``,
``structure_score(covariance, correlation, inputs, analysis_settings)`` with its description
``STRUCTURE_SCORE``, ``check_settings(settings)`` and ``INPUT_ATTRIBUTES``, the per-input
columns besides ``obs_id``; optionally ``monitor_set(data)`` (what training reports its loss
on, when the training set is too large) and ``available_checkpoints(settings)``. Modules are
torch-free at import.
"""

from __future__ import annotations

from types import ModuleType

from losskernel.experiments import digits, imagenet, modarith

TASKS: dict[str, ModuleType] = {
    "modular_arithmetic": modarith, "digits": digits, "imagenet": imagenet}


def get_task(name: str) -> ModuleType:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    return TASKS[name]
