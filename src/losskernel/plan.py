"""What an experiment runs, known in one place.

:meth:`Plan.from_config` reads a config (:func:`losskernel.config.read_config`), then checks
what the schema cannot express: seeds, checkpoints, headline metrics and the task's own checks.
Every consumer asks the same object: the Snakemake rules (``workflow/rules/common.smk``), the
command line, the cost planner and the config checks.

An experiment's runs are its SGLD samplings, each with its own directory under
``results/<experiment>/``:

- ``seed<S>``: the experiment's sampling settings, one run per seed of ``sampling.seeds``;
- ``gamma<γ>``: one run per γ of ``analysis.gamma_sweep``, each at its own seed, with the
  sweep's sampling overrides: the γ nearest ``sampling.localization`` at the sweep's seed (so
  that γ equal to the localization reuses the main run ``seed<S>`` when that seed is sampled
  anyway and the sweep's overrides change nothing), the others at the next seeds in config
  order;
- ``gamma<γ>-seed<S>``: the replica of the nearest γ at the seed after those, whose CKA with
  it is the sweep's noise ceiling (two kernels that differ only by SGLD noise);
- ``checkpoint<i>``: SGLD localized at the i-th of ``analysis.trajectory.num_checkpoints``
  training checkpoints, with the trajectory's sampling overrides.

An experiment with ``models: M`` trains M models that differ only in their weight
initialization and minibatch order (``model.init_seed`` and ``training.shuffle_seed`` plus the
model's index; the data, its split and label noise and the kernel inputs are the same, so every
model is read on the same inputs). Model 0 is the experiment itself; model m is the replicate
``<experiment>/model<m>`` (:attr:`Plan.replicates`), with its own directory
``results/<experiment>/model<m>/``, which runs the main runs and their readings only: the γ
sweep, the trajectory and the figures stay on model 0. The headline averages the models
(``losskernel.readings.summary.model_headline``).

Each run carries only its own settings, so changing another run's settings (another γ, a new
seed) never reruns it. What the jobs read and write is written in the workflow's rules
(``workflow/rules/*.smk``); what each job is told is in :mod:`losskernel.params`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from losskernel.config import ConfigError, read_config
from losskernel.readings.sweep import sweep_metrics
from losskernel.tasks import load_task
from losskernel.tasks.protocol import (
    DataFile,
    DataSource,
    FigureSet,
    Pretrained,
    Reading,
    Task,
    resolve_callable,
)

GENERIC_READINGS: dict[str, tuple[str, ...]] = {
    # per-seed readings of the appendix analyses (configured by their analysis section) and
    # the metrics their tables hold
    "mislabels": ("mislabel_roc_auc", "self_cov_mislabeled", "self_cov_normal", "self_cov_ratio",
                  *(f"baseline_roc_auc_{score}" for score in (
                      "posterior_mean_loss", "loss_at_optimum", "noise_variance_best",
                      "noise_mean_best", "history_loss_mean", "history_loss_variance"))),
    "convergence": ("cka_half", "cka_halves", "cka_chain_halves"),
}
EXPERIMENT_READINGS: dict[str, tuple[str, ...]] = {
    "model": ("num_parameters", "train_accuracy", "test_accuracy"),
    "trajectory": ("trajectory_gain",),
    "diagnostics": ("worst_rhat", "median_ess_bulk", "seed_to_seed_cka"),
}
"""Readings with one value per experiment, and their metrics (``model``: of a model trained
here, its size and its accuracies at the end of training)."""
MODEL_METRICS = EXPERIMENT_READINGS["model"]
"""Metrics of the trained model itself, read from no SGLD run."""
TRAJECTORY_METRICS = EXPERIMENT_READINGS["trajectory"]
"""Metrics read from the checkpoint runs (every other reading is of the main runs)."""
DIAGNOSTIC_HEADLINE = EXPERIMENT_READINGS["diagnostics"]
"""Headline rows of every experiment: how far its main runs' draws can be trusted (the
seed-to-seed CKA needs two seeds or more)."""
REPLICATED_SEEDS = (("model", "init_seed"), ("training", "shuffle_seed"))
"""The settings in which an experiment's trained models differ: model m has model 0's value
plus m (a full-batch task's shuffle seed changes nothing)."""
MODEL_ZERO_ANALYSES = ("gamma_sweep", "trajectory")
"""Analyses that run on model 0 only (a replicate leaves them out)."""
CALIBRATION_FACTORS = {"step_size": (0.3, 1.0, 3.0), "nbeta": (0.1, 1.0, 10.0)}
"""The calibration grid when ``analysis.calibration`` lists no values: the configured value
times these."""


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


def calibration_point(setting: Mapping[str, float]) -> str:
    """A calibration setting's name: ``eps0.001-nbeta50-gamma100``."""
    return (f"eps{setting['step_size']:g}-nbeta{setting['nbeta']:g}"
            f"-gamma{setting['localization']:g}")


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
        if sweep:
            swept = [*zip(self.gamma_runs, sweep["localizations"], self.gamma_seeds,
                          strict=True), self.gamma_replica]
            for name, gamma, seed in swept:
                runs.setdefault(name, Run(name, seed, {
                    **sampling, **sweep["sampling"], "localization": gamma}))
        trajectory = self.analysis.get("trajectory")
        for index, name in enumerate(self.checkpoint_runs):
            checkpoint = {"index": index, "num_checkpoints": trajectory["num_checkpoints"]}
            runs[name] = Run(name, trajectory["seed"], {**sampling, **trajectory["sampling"]},
                             checkpoint)
        return runs

    def runs_behind(self, metric: str) -> list[str]:
        """The runs whose draws a metric is read from: none for the model's own, the
        checkpoint runs for the trajectory's, the main runs for every other."""
        if metric in MODEL_METRICS:
            return []
        return self.checkpoint_runs if metric in TRAJECTORY_METRICS else self.main_runs

    def replicate(self, index: int) -> Experiment:
        """Model ``index`` (1, 2, ...) of this experiment: ``<name>/model<index>``, trained with
        the seeds of :data:`REPLICATED_SEEDS` moved by ``index``, without the analyses of
        :data:`MODEL_ZERO_ANALYSES` and their headline rows (see the module docstring)."""
        settings = copy.deepcopy(dict(self.settings))
        for section, key in REPLICATED_SEEDS:
            if key in settings.get(section, {}):
                settings[section][key] += index
        for analysis in MODEL_ZERO_ANALYSES:
            settings["analysis"].pop(analysis, None)
        name, settings["models"] = f"{self.name}/model{index}", 1
        produced = set(Experiment(name, settings).metrics)
        settings["headline_metrics"] = [metric for metric in settings["headline_metrics"]
                                        if metric in produced]
        return Experiment(name, settings)

    def run(self, name: str) -> Run:
        if name not in self.runs:
            raise KeyError(f"experiment {self.name} has no run {name!r}: its runs are "
                           f"{', '.join(self.runs)} (sampling.seeds, analysis.gamma_sweep, "
                           f"analysis.trajectory)")
        return self.runs[name]

    @property
    def gamma_seeds(self) -> list[int]:
        """The SGLD seed of each γ of the sweep, in config order: the γ nearest (on a log
        scale) ``sampling.localization`` at the sweep's seed, the others at the next seeds.
        Distinct seeds make the γ's Monte-Carlo errors independent, so the CKA between γ is
        not inflated by shared noise."""
        sweep = self.analysis.get("gamma_sweep")
        if not sweep:
            return []
        gammas, nearest = sweep["localizations"], self.nearest_gamma_index
        later = iter(range(sweep["seed"] + 1, sweep["seed"] + len(gammas)))
        return [sweep["seed"] if index == nearest else next(later)
                for index in range(len(gammas))]

    @property
    def nearest_gamma_index(self) -> int:
        """The index of the sweep's γ nearest ``sampling.localization`` on a log scale."""
        gammas = self.analysis["gamma_sweep"]["localizations"]
        target = math.log(self.settings["sampling"]["localization"])
        return min(range(len(gammas)), key=lambda index: abs(math.log(gammas[index]) - target))

    @property
    def gamma_runs(self) -> list[str]:
        """The run of each γ of the sweep, in config order (see the module docstring)."""
        sweep = self.analysis.get("gamma_sweep")
        if not sweep:
            return []
        sampling = self.settings["sampling"]
        reuse = sweep["seed"] in sampling["seeds"] and all(
            sampling[key] == value for key, value in sweep["sampling"].items())
        return [f"seed{seed}" if reuse and gamma == sampling["localization"]
                and seed == sweep["seed"] else f"gamma{gamma_label(gamma)}"
                for gamma, seed in zip(sweep["localizations"], self.gamma_seeds, strict=True)]

    @property
    def gamma_replica(self) -> tuple[str, float, int]:
        """The replica run of the γ nearest the localization (name, γ, seed): the same
        settings at the seed after the sweep's, so its CKA with that γ's run is the noise
        ceiling of the sweep's CKA."""
        sweep = self.analysis["gamma_sweep"]
        gamma = sweep["localizations"][self.nearest_gamma_index]
        seed = sweep["seed"] + len(sweep["localizations"])
        return f"gamma{gamma_label(gamma)}-seed{seed}", gamma, seed

    @property
    def checkpoint_runs(self) -> list[str]:
        trajectory = self.analysis.get("trajectory")
        return [f"checkpoint{index}" for index in range(trajectory["num_checkpoints"])] if (
            trajectory) else []

    @property
    def seeds(self) -> list[int]:
        return list(self.settings["sampling"]["seeds"])

    @property
    def main_runs(self) -> list[str]:
        """The runs of ``sampling.seeds``, one per seed: ``seed<S>``."""
        return [f"seed{seed}" for seed in self.seeds]

    @property
    def seed_readings(self) -> list[str]:
        """The per-seed metric tables: the task's readings, then mislabels and convergence
        when configured."""
        return [*(reading.name for reading in self.task.READINGS),
                *(name for name in GENERIC_READINGS if name in self.analysis)]

    @property
    def experiment_readings(self) -> list[str]:
        """The per-experiment metric tables: the model's when it is trained here, then the
        configured analyses'."""
        return [name for name in EXPERIMENT_READINGS
                if name in self.analysis or (name == "model" and self.trains_model)]

    @property
    def headline_metrics(self) -> list[str]:
        """The experiment's headline rows: its configured ones, then the diagnostic ones
        (without the seed-to-seed CKA when there is one seed)."""
        diagnostic = [metric for metric in DIAGNOSTIC_HEADLINE
                      if metric != "seed_to_seed_cka" or len(self.seeds) >= 2]
        configured = list(self.settings["headline_metrics"])
        return [*configured, *(metric for metric in diagnostic if metric not in configured)]

    @property
    def calibration_grid(self) -> list[dict[str, float]]:
        """The settings of ``analysis.calibration``: every step size × nβ × γ, nβ = 0 (the
        control, no likelihood) included, each a dict of ``step_size``, ``nbeta`` and
        ``localization``."""
        calibration, sampling = self.analysis["calibration"], self.settings["sampling"]

        def values(key: str, listed: str) -> list[float]:
            if calibration[listed] is not None:
                return sorted(calibration[listed])
            return [float(f"{sampling[key] * factor:.6g}")
                    for factor in CALIBRATION_FACTORS[key]]

        nbetas = [0.0, *values("nbeta", "nbetas")]
        gammas = sorted(calibration["localizations"] or [sampling["localization"]])
        return [{"step_size": step_size, "nbeta": nbeta, "localization": gamma}
                for gamma in gammas for step_size in values("step_size", "step_sizes")
                for nbeta in nbetas]

    @property
    def calibration_points(self) -> list[str]:
        """The name of each setting of :attr:`calibration_grid`, in its order."""
        return [calibration_point(setting) for setting in self.calibration_grid]

    def calibration_setting(self, point: str) -> dict[str, float]:
        """The setting of a calibration point's name; ``KeyError`` names the known ones."""
        for setting in self.calibration_grid:
            if calibration_point(setting) == point:
                return setting
        raise KeyError(f"experiment {self.name} has no calibration point {point!r}: its "
                       f"points are {', '.join(self.calibration_points)} "
                       f"(analysis.calibration)")

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

    def chain_blocks(self, run_name: str, chains_per_job: int | str) -> list[range]:
        """The blocks of chains of a run, one sampling job each (config key chains_per_job)."""
        return chain_blocks(self.run(run_name).sampling["num_chains"], chains_per_job)

    def data_files(self) -> dict[str, str]:
        """The task's data files by key: inputs of every step that builds the data."""
        return {data_file.key: data_file.path for data_file in self.task.DATA_FILES}


def chain_blocks(num_chains: int, chains_per_job: int | str) -> list[range]:
    """The chains of a run that each sampling job runs: consecutive blocks of
    ``chains_per_job`` chains (``"all"``: one block), the last one shorter if need be."""
    size = num_chains if chains_per_job == "all" else int(chains_per_job)
    return [range(first, min(first + size, num_chains)) for first in range(0, num_chains, size)]


def block_name(chains: range) -> str:
    """The ``chain`` wildcard of a sampling job: ``3`` for one chain, ``0-3`` for chains 0..3."""
    return str(chains[0]) if len(chains) == 1 else f"{chains[0]}-{chains[-1]}"


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
            check_models(experiment)
        self.replicates = {replicate.name: replicate for experiment in self.experiments.values()
                           for replicate in map(experiment.replicate,
                                                range(1, experiment.settings["models"]))}
        """Every model but model 0 of each experiment, by name (``<experiment>/model<m>``)."""
        self.every_model = {**self.experiments, **self.replicates}
        """The experiments and their replicates: every model that is trained and sampled."""
        check_declarations(self.experiments.values())
        check_macro_names(self.experiments.values())
        self.data_sources: dict[str, DataSource] = {}
        """The outside data of every experiment and data file by name (each a manifest)."""
        self._source_names: dict[str, list[str]] = {}
        self._gather_data_sources(check_files)
        self.sweeps: dict[str, Mapping[str, Any]] = dict(config.get("sweeps", {}))
        """Each sweep (config key ``sweeps``) by name: experiments read side by side."""
        for name, sweep in self.sweeps.items():
            check_sweep(name, sweep, self.experiments)

    @classmethod
    def from_config(cls, config: Mapping, schema_path: str | os.PathLike,
                    source: str = "the config file", check_files: bool = True) -> Plan:
        """Read (resolve, validate, complete) a merged config and build its plan."""
        return cls(read_config(config, schema_path, source), check_files)

    def experiment(self, name: str) -> Experiment:
        """An experiment of the config, or a replicate of one (``<experiment>/model<m>``)."""
        if name not in self.every_model:
            raise ConfigError(f"no experiment {name!r} in the config; choose from "
                              f"{', '.join(self.experiments)}")
        return self.every_model[name]

    def sweep(self, name: str) -> Mapping[str, Any]:
        """A sweep of the config; ``KeyError`` names the configured ones."""
        if name not in self.sweeps:
            raise KeyError(f"no sweep {name!r} in the config (key sweeps); its sweeps are "
                           f"{', '.join(self.sweeps) or 'none'}")
        return self.sweeps[name]

    def models(self, name: str) -> list[str]:
        """The experiment's models: itself (model 0), then its replicates."""
        return [name, *(f"{name}/model{index}"
                        for index in range(1, self.experiment(name).settings["models"]))]

    def run_blocks(self, experiment: str, run_name: str) -> dict[str, range]:
        """The sampling jobs of a run by their ``chain`` wildcard, each with its chains."""
        blocks = self.experiment(experiment).chain_blocks(run_name, self.config["chains_per_job"])
        return {block_name(block): block for block in blocks}

    def declarations(self) -> dict[str, tuple[str, DataFile | Reading | FigureSet]]:
        """The data files, readings and figure sets of the configured tasks by rule name, each
        with the config name of a task that declares it (each is a rule of the workflow)."""
        found: dict[str, tuple[str, DataFile | Reading | FigureSet]] = {}
        for experiment in self.experiments.values():
            task = experiment.task
            for declaration in (*task.DATA_FILES, *task.READINGS, *task.FIGURES):
                found.setdefault(declaration.rule, (experiment.settings["task"], declaration))
        return found

    def offering(self, declaration: Reading | FigureSet) -> list[str]:
        """The experiments whose task declares this reading or figure set."""
        return [name for name, experiment in self.every_model.items()
                if declaration in (*experiment.task.READINGS, *experiment.task.FIGURES)]

    def sources_of(self, reader: str) -> list[str]:
        """The names of the data sources an experiment (or replicate), or the rule of a data
        file, reads."""
        return self._source_names.get(reader, [])

    def _gather_data_sources(self, check_files: bool) -> None:
        """Every data source, by name: readers of identical data share it, and a source that
        differs from an earlier one of its name is renamed ``<name>-<reader>``. With
        ``check_files``, a missing file is a ``ConfigError`` naming it and the fix."""
        readers: list[tuple[str, Iterable[DataSource]]] = [
            (name, experiment.task.data_sources(experiment.settings))
            for name, experiment in self.every_model.items()]
        for rule, (_, declaration) in self.declarations().items():
            if isinstance(declaration, DataFile) and declaration.sources is not None:
                settings = {key: self.config[key] for key in declaration.config_keys}
                readers.append((rule, resolve_callable(declaration.sources)(settings)))
        for reader, sources in readers:
            for source in sources:
                name = source.name
                if name in self.data_sources and self.data_sources[name] != source:
                    name = f"{source.name}-{reader.replace('/', '-')}"
                source = dataclasses.replace(source, name=name)
                self.data_sources.setdefault(name, source)
                self._source_names.setdefault(reader, []).append(name)
                missing = [path for path in source.files if not os.path.isfile(path)]
                if source.tree and not os.path.isdir(source.tree):
                    missing.append(source.tree)
                if check_files and missing:
                    raise ConfigError(
                        f"data of {reader}: {missing[0]} does not exist "
                        f"({source.origin}); {source.fix or 'make it available'}")

    @property
    def trained(self) -> list[str]:
        """Experiments and replicates that train their own model."""
        return [e.name for e in self.every_model.values() if e.trains_model]

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
         f"{analysis['figure_seed']} is not one of sampling.seeds {sampling['seeds']}; choose "
         f"one of them or add it there"),
        ("analysis.standard_error_batches",
         analysis.get("standard_error_batches", 0) > sampling["num_draws"],
         f"{analysis.get('standard_error_batches')} blocks need at least as many draws "
         f"(sampling.num_draws = {sampling['num_draws']}); lower it or raise num_draws"),
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
                     f"checkpoints the model has (the distinct log-spaced steps of "
                     f"training.num_checkpoints up to max_steps, or the list model.checkpoints "
                     f"of a pretrained model); lower it"))
    batches = analysis["diagnostics"]["batches"]
    short = [name for name, run in experiment.runs.items()
             if run.sampling["num_chains"] * (run.sampling["num_draws"] // batches) < 2
             or run.sampling["num_draws"] < 4]
    problems.append(("analysis.diagnostics.batches", bool(short),
                     f"{batches} blocks of the draws leave fewer than 2 samples per block (or "
                     f"fewer than 4 draws) in runs {short}; lower it or raise their num_draws"))
    unknown = [name for name in (analysis.get("gamma_sweep") or {}).get("attributes", [])
               if name not in task.INPUT_ATTRIBUTES]
    problems.append(("analysis.gamma_sweep.attributes", bool(unknown),
                     f"{unknown} are not attributes of the {settings['task']!r} inputs; choose "
                     f"from {list(task.INPUT_ATTRIBUTES)}"))
    for key, named in (("headline_metrics", settings["headline_metrics"]),
                       ("comparisons", [m for pair in settings["comparisons"] for m in pair])):
        missing = list(dict.fromkeys(m for m in named if m not in experiment.metrics))
        problems.append((key, bool(missing),
                         f"{missing} need an analysis this experiment does not run; it can "
                         f"report {sorted(experiment.metrics)}"))
    model_zero = [m for pair in settings["comparisons"] for m in pair if m in TRAJECTORY_METRICS]
    problems.append(("comparisons", bool(model_zero),
                     f"{model_zero} are read from model 0 only (the trajectory), so they cannot "
                     f"be compared model by model; compare per-seed metrics"))
    for key, failed, message in problems:
        if failed:
            raise ConfigError(f"invalid config key {prefix}.{key}: {message}")


def check_models(experiment: Experiment) -> None:
    """``models`` above 1 needs a model this experiment trains, with an ``init_seed`` to vary."""
    models = experiment.settings["models"]
    if models == 1:
        return
    prefix = f"invalid config key experiments.{experiment.name}.models: {models} models need"
    if not experiment.trains_model:
        raise ConfigError(f"{prefix} an experiment that trains its own model (this one takes "
                          f"{'pretrained weights' if experiment.pretrained else 'model_from'}); "
                          f"set models: 1 here, or set it on the experiment that trains")
    if "init_seed" not in experiment.settings["model"]:
        raise ConfigError(f"{prefix} model.init_seed, the seed the models differ in, which the "
                          f"{experiment.settings['task']!r} task's model section lacks; set "
                          f"models: 1")


def check_macro_names(experiments: Iterable[Experiment]) -> None:
    """No two headline rows share a LaTeX macro (``losskernel.readings.summary.macro_name``
    keeps letters only), so the paper's macros cannot collide after every job has run."""
    from losskernel.readings.summary import macro_name

    seen: dict[str, str] = {}
    for experiment in experiments:
        for metric in experiment.headline_metrics:
            row = f"{experiment.name} {metric}"
            other = seen.setdefault(macro_name(row), row)
            if other != row:
                raise ConfigError(
                    f"invalid config key experiments.{experiment.name}: its headline row "
                    f"{metric!r} and the row {other!r} would both be the macro "
                    f"\\{macro_name(row)} of the paper (macro names keep letters only); name "
                    f"experiments so that their letters differ (fashion-small, not fashion-c2)")


def check_sweep(name: str, sweep: Mapping[str, Any], experiments: Mapping[str, Experiment]
                ) -> None:
    """A sweep names configured experiments, each reporting every metric the sweep reads as a
    headline row; ``ConfigError`` names the key and the fix."""
    prefix = f"invalid config key sweeps.{name}"
    unknown = [experiment for experiment in sweep["experiments"] if experiment not in experiments]
    if unknown:
        raise ConfigError(f"{prefix}.experiments: {unknown} are not experiments of the config; "
                          f"choose from {sorted(experiments)}")
    wanted = sweep_metrics(sweep["x"], sweep["label"], sweep["panels"])
    for experiment in sweep["experiments"]:
        headline = experiments[experiment].headline_metrics
        missing = [metric for metric in wanted if metric not in headline]
        if missing:
            raise ConfigError(f"{prefix}: {missing} are not headline rows of {experiment}; add "
                              f"them to experiments.{experiment}.headline_metrics (the sweep "
                              f"reads its headline table)")


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
        values |= {"num_models": settings["models"], "num_seeds": len(sampling["seeds"]),
                   "check_max_rhat": analysis["checks"]["max_rhat"],
                   "min_median_ess": analysis["diagnostics"]["min_median_ess"],
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
