"""The task contract: what an experiment module gives the workflow.

A task is a Python module. A config names it by a built-in name (``modular_arithmetic``,
``digits``, ``imagenet``) or by import path (``task: mypackage.mytask``), and
:func:`losskernel.tasks.load_task` checks that the module has every member of :class:`Task`.
The generic stages (training, SGLD, kernels, the appendix analyses, UMAP, summaries) call only
these members; what a task adds beyond them it declares as data:

- :class:`DataSource`: data from outside the workflow that its data reads (files or a
  directory tree), recorded with hashes and origins (the rule ``record_data``);
- :class:`DataFile`: a file its data reads that the workflow makes first (a rule of its own);
- :class:`Reading`: tables it reads off one SGLD seed's files (a rule of its own);
- :class:`FigureSet`: figures it draws from an experiment's files (a rule of its own).

Hooks that most tasks do not need have default implementations in
:mod:`losskernel.tasks.defaults`, which a task module imports by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

    from losskernel.method.chains import IndexedData

Environment = Literal["analysis", "torch"]
"""The pinned conda environment a declared rule runs in (``envs/<name>.yaml``)."""
FigureInputScope = Literal["figure_seed", "every_seed", "experiment"]
"""Where a figure set's input file lives: the figure seed's run directory
(``results/<experiment>/seed<figure_seed>/``), every seed's (a list, in seed order), or the
experiment's directory (``results/<experiment>/``)."""


@dataclass(frozen=True)
class DataSource:
    """Data from outside the workflow that a task reads, and where it came from.

    ``files`` are absolute paths: they become inputs of the workflow's rule ``record_data``,
    so a changed file reruns every job that reads the data. ``tree`` is a directory whose every
    file is data (an ImageNet root): too many files for Snakemake to track one by one, they are
    hashed into the manifest instead (:mod:`losskernel.manifest`), and the rule reruns when a
    file's size or modification time changes. ``origin`` says where the data came from when no
    Debian package owns a file: the config key and the value it gave (``config data.root =
    /data/train``). ``name`` names the manifest, ``results/data/<name>.tsv``; two experiments
    that read the same data share one. ``fix`` says how to get the data when a file is missing.
    """

    name: str
    origin: str
    files: tuple[str, ...] = ()
    tree: str = ""
    fix: str = ""


@dataclass(frozen=True)
class DataFile:
    """A table the task's data reads, made by its own workflow rule before any step needs it.

    ``make(settings)`` returns the table and notes for its provenance record (the version of
    an outside resource, say); ``settings`` holds the top-level config sections
    ``config_keys`` (the rule's params). The workflow writes the table to ``path`` (TSV), and
    the path reaches the task's ``make_data`` as ``data[key]``. ``sources(settings)`` gives the
    outside data ``make`` reads (:class:`DataSource`), recorded before it runs; like ``make``,
    it may be given as ``"module:function"``.
    """

    key: str
    path: str
    rule: str
    make: Callable[[Mapping[str, Any]], tuple[pd.DataFrame, Mapping[str, str]]] | str
    config_keys: tuple[str, ...] = ()
    environment: Environment = "analysis"
    sources: Callable[[Mapping[str, Any]], tuple[DataSource, ...]] | str | None = None


@dataclass(frozen=True)
class Reading:
    """Tables a task reads off one SGLD seed: one rule, one job per (experiment, seed).

    ``compute(task, settings, **inputs)`` gets the loaded ``inputs`` (file names in the seed's
    run directory: ``traces.nc`` as a trace dataset, ``kernel-<kind>.nc`` as a kernel dataset)
    and the experiment settings at the dotted keys ``settings`` (by their last component, e.g.
    ``analysis.knn_k`` as ``knn_k``). It returns ``{"metrics": table of (metric, value), **
    tables}``; the metrics go to ``<name>.tsv`` and each other table to its file in ``tables``.
    ``metrics`` names what the metrics table holds, the values ``headline_metrics`` may quote.
    ``compute`` may be given as ``"module:function"``, imported when the reading runs.
    ``experiment_inputs`` are files of the experiment's directory that the workflow makes, read
    like ``inputs``: ``input-features.nc``, the kernel inputs' pixels, penultimate activations
    and output probabilities at w* (``losskernel.method.features``), as a dataset.
    """

    name: str
    rule: str
    inputs: Mapping[str, str]
    tables: Mapping[str, str]
    metrics: tuple[str, ...]
    compute: Callable[..., Mapping[str, pd.DataFrame]] | str
    settings: tuple[str, ...] = ()
    environment: Environment = "analysis"
    experiment_inputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Figure:
    """One figure of a figure set: ``results/figures/<experiment>/<name>.png``, with the
    caption the HTML report shows (a reStructuredText file)."""

    name: str
    caption: str


@dataclass(frozen=True)
class FigureSet:
    """Figures a task draws from an experiment's files: one rule, one job per experiment.

    ``draw(experiment, task, settings, **inputs)`` gets the loaded ``inputs`` (name ->
    (scope, file name); ``.nc`` files as datasets, ``.tsv`` files as tables) and the settings at
    the dotted keys ``settings``, and returns ``{output name: matplotlib Figure}`` for every
    entry of ``figures``. ``category`` groups them in the report. ``draw`` may be given as
    ``"module:function"`` (so that a task module does not import matplotlib).
    """

    name: str
    rule: str
    category: str
    figures: Mapping[str, Figure]
    inputs: Mapping[str, tuple[FigureInputScope, str]]
    draw: Callable[..., Mapping[str, Any]] | str
    settings: tuple[str, ...] = ()
    environment: Environment = "analysis"


@dataclass(frozen=True)
class Pretrained:
    """Weights loaded instead of trained: the final weights file and the user's own training
    checkpoints as ``(step, path)`` (for the developmental trajectory)."""

    weights: str
    checkpoints: tuple[tuple[int, str], ...] = field(default=())


class TaskData(Protocol):
    """What a task's ``make_data`` returns: any object that turns rows of the kernel-input
    table into an indexed data set of (inputs, targets)."""

    def tensors(self, rows: pd.DataFrame) -> IndexedData: ...


class Task(Protocol):
    """The members every task module has (see the module docstring).

    Settings arguments are sections of the experiment's resolved config, defaults filled:
    ``settings`` is the whole experiment section, ``data_settings`` its ``data`` (with each
    :class:`DataFile` path at its key), and so on. Checks raise ``ValueError("<key.path>:
    <problem and fix>")`` with the key relative to the experiment.
    """

    INPUT_ATTRIBUTES: tuple[str, ...]
    """Per-input columns besides ``obs_id``; they become coordinates of traces and kernels."""
    SETTINGS_SCHEMA: Mapping[str, Any]
    """JSON schema of the task's part of an experiment (``data``, ``model``, ``kernel_inputs``,
    and extra keys of ``training``, ``sampling`` or ``analysis``), merged into the workflow's."""
    STRUCTURE_SCORE: str
    """What ``structure_score`` measures, as figure legends name it."""
    DATA_FILES: tuple[DataFile, ...]
    READINGS: tuple[Reading, ...]
    FIGURES: tuple[FigureSet, ...]

    def check_settings(self, settings: Mapping) -> None:
        """Checks of the experiment's settings that the schema cannot express."""

    def check_files(self, settings: Mapping) -> None:
        """Checks that the files the settings name exist (skipped when planning elsewhere)."""

    def data_sources(self, settings: Mapping) -> tuple[DataSource, ...]:
        """The outside data ``make_data`` reads (the experiment's whole settings); none when the
        task makes its data itself."""

    def make_data(self, data_settings: Mapping) -> TaskData:
        """Every example with its split, labels and attributes."""

    def build_model(self, model_settings: Mapping, data: TaskData | None) -> nn.Module:
        """The untrained network, initialized from the settings' seed."""

    def pretrained(self, model_settings: Mapping) -> Pretrained | None:
        """The files to load instead of training, or None when the model is trained here."""

    def load_weights(self, model: nn.Module, path: str) -> None:
        """Load a pretrained weights file into a model of ``build_model``."""

    def available_checkpoints(self, settings: Mapping) -> int:
        """How many checkpoints the developmental trajectory can choose from."""

    def training_split(self, data: TaskData) -> tuple[IndexedData, np.ndarray | None]:
        """The training set (what SGLD's minibatches come from) and optional strata."""

    def monitor_set(self, data: TaskData) -> IndexedData | None:
        """What training reports its loss on, when the training set is too large; or None."""

    def evaluate(self, model: nn.Module, data: TaskData) -> dict[str, float]:
        """Named metrics of a model during training (accuracies)."""

    def is_converged(self, metrics: Mapping[str, float], training_settings: Mapping
                     ) -> bool | None:
        """Whether ``evaluate``'s metrics meet the training settings' target; None for a task
        without one (training runs ``training.max_steps``, and no check asks for a target)."""

    def select_kernel_inputs(self, data: TaskData, kernel_input_settings: Mapping
                             ) -> pd.DataFrame:
        """The kernel inputs: a table with ``obs_id`` and ``INPUT_ATTRIBUTES``."""

    def excluded_edges(self, inputs: pd.DataFrame, rule: str) -> np.ndarray | None:
        """Pairs removed from a neighbour graph under ``rule`` (``none``, ``same_output``, and
        whatever else the task defines); None keeps every pair."""

    def structure_score(self, covariance: np.ndarray, correlation: np.ndarray,
                        inputs: pd.DataFrame, analysis_settings: Mapping) -> float:
        """The developmental trajectory's score of one checkpoint's kernels."""

    def count_kernel_inputs(self, settings: Mapping) -> tuple[int, str]:
        """How many kernel inputs the settings select, and how that was found (for sizing
        jobs before any data exists)."""

    def timing_example(self, settings: Mapping, size: int
                       ) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
        """The untrained model and ``size`` inputs and targets shaped like the kernel inputs,
        for timing the model before any data or weights exist (``losskernel plan``)."""


TASK_MEMBERS: tuple[str, ...] = tuple(
    name for name in (*Task.__annotations__, *vars(Task)) if not name.startswith("_"))
"""Every member :func:`losskernel.tasks.load_task` requires of a task module."""


def declared_settings(settings: Mapping, keys: Sequence[str]) -> dict[str, Any]:
    """The values at the dotted ``keys`` of ``settings``, by their last component; a key that
    is absent gives None (an optional section)."""
    values = {}
    for key in keys:
        value: Any = settings
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        values[key.rsplit(".", 1)[-1]] = value
    return values


def resolve_callable(function: Callable[..., Any] | str) -> Callable[..., Any]:
    """A declared function: itself, or ``"module:function"`` imported now."""
    if callable(function):
        return function
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)
