"""What an experiment runs, known in one place.

:meth:`Plan.from_config` reads a config (:func:`losskernel.config.read_config`), then checks
what the schema cannot express: seeds, checkpoints, headline metrics and the task's own checks.
Every consumer asks the same object: the Snakemake rules (``workflow/rules/common.smk``), the
command line, the cost planner and the config checks.

An experiment's runs are its SGLD samplings, each with its own directory under
``results/<experiment>/``:

- ``seed<S>``: the experiment's sampling settings, one run per seed of ``sampling.seeds``;
- ``gamma<γ>``: one run per γ of ``analysis.gamma_sweep`` at the sweep's seed, with the
  sweep's sampling overrides; the γ equal to ``sampling.localization`` reuses the main run
  ``seed<S>`` when the sweep's seed is sampled anyway and the sweep overrides nothing;
- ``checkpoint<i>``: SGLD localized at the i-th of ``analysis.trajectory.num_checkpoints``
  training checkpoints, with the trajectory's sampling overrides.

Each run carries only its own settings, so changing another run's settings (another γ, a new
seed) never reruns it. What the jobs read and write is in :mod:`losskernel.dag`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from losskernel.config import ConfigError, read_config
from losskernel.tasks import load_task
from losskernel.tasks.protocol import Pretrained, Task

GENERIC_READINGS: dict[str, tuple[str, ...]] = {
    # per-seed readings of the appendix analyses (configured by their analysis section) and
    # the metrics their tables hold
    "mislabels": ("mislabel_roc_auc", "self_cov_mislabeled", "self_cov_normal", "self_cov_ratio",
                  *(f"baseline_roc_auc_{score}" for score in (
                      "posterior_mean_loss", "loss_at_optimum", "noise_variance_best",
                      "noise_mean_best", "history_loss_mean", "history_loss_variance"))),
    "convergence": ("cka_half", "cka_halves", "cka_chain_halves"),
}
EXPERIMENT_READINGS: dict[str, tuple[str, ...]] = {"trajectory": ("trajectory_gain",)}
"""Readings with one value per experiment, and their metrics."""


@dataclass(frozen=True)
class Run:
    """One SGLD sampling (all chains) and its directory ``results/<experiment>/<name>``.

    ``sampling`` is the sampling section of this run without ``seeds``; ``checkpoint`` is
    ``{"index": i, "num_checkpoints": n}`` for a trajectory run, else None.
    """

    name: str
    seed: int
    sampling: Mapping[str, Any]
    checkpoint: Mapping[str, int] | None = None


def gamma_label(gamma: float) -> str:
    """The γ in a run name: ``gamma30``, ``gamma0.001``."""
    return f"{gamma:g}"


@dataclass(frozen=True)
class Experiment:
    """One experiment of the config: its resolved settings (defaults filled) and its runs."""

    name: str
    settings: Mapping[str, Any]

    @functools.cached_property
    def task(self) -> Task:
        return load_task(self.settings["task"])

    @property
    def model_source(self) -> str:
        """The experiment whose trained model this one samples around (itself by default)."""
        return self.settings.get("model_from", self.name)

    @property
    def analysis(self) -> Mapping[str, Any]:
        return self.settings["analysis"]

    @functools.cached_property
    def pretrained(self) -> Pretrained | None:
        return self.task.pretrained(self.settings["model"])

    @property
    def trains_model(self) -> bool:
        """Whether the experiment trains its own model (not another's, nor pretrained weights)."""
        return self.model_source == self.name and self.pretrained is None

    @functools.cached_property
    def runs(self) -> dict[str, Run]:
        """Every run by name, in order: seeds, the γ sweep, the trajectory."""
        sampling = {k: v for k, v in self.settings["sampling"].items() if k != "seeds"}
        runs = {f"seed{seed}": Run(f"seed{seed}", seed, sampling)
                for seed in self.settings["sampling"]["seeds"]}
        sweep = self.analysis.get("gamma_sweep")
        for name, gamma in zip(self.gamma_runs, (sweep or {}).get("localizations", []),
                               strict=True):
            runs.setdefault(name, Run(name, sweep["seed"], {
                **sampling, **sweep["sampling"], "localization": gamma}))
        trajectory = self.analysis.get("trajectory")
        for index, name in enumerate(self.checkpoint_runs):
            checkpoint = {"index": index, "num_checkpoints": trajectory["num_checkpoints"]}
            runs[name] = Run(name, trajectory["seed"], {**sampling, **trajectory["sampling"]},
                             checkpoint)
        return runs

    def run(self, name: str) -> Run:
        if name not in self.runs:
            raise KeyError(f"experiment {self.name} has no run {name!r}: its runs are "
                           f"{', '.join(self.runs)} (sampling.seeds, analysis.gamma_sweep, "
                           f"analysis.trajectory)")
        return self.runs[name]

    @property
    def gamma_runs(self) -> list[str]:
        """The run of each γ of the sweep, in config order (see the module docstring)."""
        sweep = self.analysis.get("gamma_sweep")
        if not sweep:
            return []
        sampling = self.settings["sampling"]
        reuse = sweep["seed"] in sampling["seeds"] and not sweep["sampling"]
        return [f"seed{sweep['seed']}" if reuse and gamma == sampling["localization"]
                else f"gamma{gamma_label(gamma)}" for gamma in sweep["localizations"]]

    @property
    def checkpoint_runs(self) -> list[str]:
        trajectory = self.analysis.get("trajectory")
        return [f"checkpoint{index}" for index in range(trajectory["num_checkpoints"])] if (
            trajectory) else []

    @property
    def seeds(self) -> list[int]:
        return list(self.settings["sampling"]["seeds"])

    @property
    def seed_readings(self) -> list[str]:
        """The per-seed metric tables: the task's readings, then mislabels and convergence
        when configured."""
        return [*(reading.name for reading in self.task.READINGS),
                *(name for name in GENERIC_READINGS if name in self.analysis)]

    @property
    def experiment_readings(self) -> list[str]:
        return [name for name in EXPERIMENT_READINGS if name in self.analysis]

    @property
    def metrics(self) -> list[str]:
        """Every metric the experiment's readings report (what ``headline_metrics`` may name)."""
        produced = {reading.name: reading.metrics for reading in self.task.READINGS}
        produced |= GENERIC_READINGS | EXPERIMENT_READINGS
        return [metric for name in (*self.seed_readings, *self.experiment_readings)
                for metric in produced[name]]

    def sections(self, *names: str) -> dict[str, Any]:
        """The named sections of the settings (what a step's arguments carry)."""
        return {name: self.settings[name] for name in names}

    def data_files(self) -> dict[str, str]:
        """The task's data files by key: inputs of every step that builds the data."""
        return {data_file.key: data_file.path for data_file in self.task.DATA_FILES}


class Plan:
    """Every experiment of a config with its runs, readings and figures; built once."""

    def __init__(self, config: Mapping[str, Any], check_files: bool = True) -> None:
        """``config`` as :func:`losskernel.config.read_config` returns it. ``check_files=False``
        skips the checks that named files exist (planning on a machine without the data)."""
        self.config = config
        self.experiments = {name: Experiment(name, settings)
                            for name, settings in config["experiments"].items()}
        for experiment in self.experiments.values():
            check_experiment(experiment, check_files)
        check_declarations(self.experiments.values())

    @classmethod
    def from_config(cls, config: Mapping, schema_path: str | os.PathLike,
                    source: str = "the config file", check_files: bool = True) -> Plan:
        """Read (resolve, validate, complete) a merged config and build its plan."""
        return cls(read_config(config, schema_path, source), check_files)

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            raise ConfigError(f"no experiment {name!r} in the config; choose from "
                              f"{', '.join(self.experiments)}")
        return self.experiments[name]

    @property
    def trained(self) -> list[str]:
        """Experiments that train their own model."""
        return [e.name for e in self.experiments.values() if e.trains_model]

    @property
    def pretrained(self) -> list[str]:
        """Experiments that load pretrained weights instead."""
        return [e.name for e in self.experiments.values()
                if e.model_source == e.name and e.pretrained is not None]


def check_experiment(experiment: Experiment, check_files: bool = True) -> None:
    """The checks of one experiment that the schema cannot express; ``ConfigError`` names the
    key and the fix."""
    prefix, settings = f"experiments.{experiment.name}", experiment.settings
    sampling, analysis, task = settings["sampling"], experiment.analysis, experiment.task
    problems = [
        ("analysis.figure_seed", analysis["figure_seed"] not in sampling["seeds"],
         f"{analysis['figure_seed']} is not one of sampling.seeds {sampling['seeds']}"),
        ("analysis.standard_error_batches",
         analysis.get("standard_error_batches", 0) > sampling["num_draws"],
         f"{analysis.get('standard_error_batches')} blocks need at least as many draws "
         f"(sampling.num_draws = {sampling['num_draws']})"),
        ("analysis.mislabels", "mislabels" in analysis
         and "mislabeled" not in task.INPUT_ATTRIBUTES,
         f"the {settings['task']!r} task has no flipped labels to detect; remove it"),
    ]
    try:
        task.check_settings(settings)
        if check_files:
            task.check_files(settings)
        available = task.available_checkpoints(settings)
    except ValueError as error:
        raise ConfigError(f"invalid config key {prefix}.{error}") from None
    trajectory = analysis.get("trajectory")
    problems.append(("analysis.trajectory.num_checkpoints",
                     bool(trajectory) and trajectory["num_checkpoints"] > available,
                     f"{(trajectory or {}).get('num_checkpoints')} exceeds the {available} "
                     f"checkpoints the model has (training.num_checkpoints, or the list "
                     f"model.checkpoints of a pretrained model); lower it"))
    unknown = [name for name in (analysis.get("gamma_sweep") or {}).get("attributes", [])
               if name not in task.INPUT_ATTRIBUTES]
    problems.append(("analysis.gamma_sweep.attributes", bool(unknown),
                     f"{unknown} are not attributes of the {settings['task']!r} inputs; choose "
                     f"from {list(task.INPUT_ATTRIBUTES)}"))
    missing = [m for m in settings["headline_metrics"] if m not in experiment.metrics]
    problems.append(("headline_metrics", bool(missing),
                     f"{missing} need an analysis this experiment does not run; it can report "
                     f"{sorted(experiment.metrics)}"))
    for key, failed, message in problems:
        if failed:
            raise ConfigError(f"invalid config key {prefix}.{key}: {message}")


def check_declarations(experiments: Sequence[Experiment]) -> None:
    """Rule names declared by the tasks are unique: two different declarations may not share
    one (it names a workflow rule and a ``losskernel`` command)."""
    seen: dict[str, object] = {}
    for experiment in experiments:
        task = experiment.task
        for declaration in (*task.DATA_FILES, *task.READINGS, *task.FIGURES):
            if seen.setdefault(declaration.rule, declaration) != declaration:
                raise ConfigError(f"invalid config key experiments.{experiment.name}.task: "
                                  f"{experiment.settings['task']} declares rule "
                                  f"{declaration.rule!r}, which another task declares "
                                  f"differently; rename one of them")


def quoted_settings(plan: Plan) -> dict[str, dict[str, object]]:
    """The settings the paper's text may quote, per experiment (they become LaTeX macros):
    sampling and analysis values, and every number of the data and kernel-input sections."""
    quoted = {}
    for name, experiment in plan.experiments.items():
        settings, analysis = experiment.settings, experiment.analysis
        sampling = settings["sampling"]
        values: dict[str, object] = {
            key: value for section in ("data", "kernel_inputs")
            for key, value in settings[section].items()
            if isinstance(value, int | float) and not isinstance(value, bool)}
        values |= {"num_seeds": len(sampling["seeds"]),
                   **{key: sampling[key] for key in ("num_chains", "num_draws", "localization",
                                                     "nbeta", "step_size")}}
        if "knn_k" in analysis:
            values["knn_k"] = analysis["knn_k"]
        if "gamma_sweep" in analysis:
            gammas = analysis["gamma_sweep"]["localizations"]
            values.update(gamma_min=min(gammas), gamma_max=max(gammas))
        if "trajectory" in analysis:
            values["num_trajectory_checkpoints"] = analysis["trajectory"]["num_checkpoints"]
        quoted[name] = values
    return quoted
