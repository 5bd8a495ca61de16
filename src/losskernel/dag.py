"""The jobs of the workflow: what each rule reads, writes and is told.

Every rule of ``workflow/rules/*.smk`` has an entry in :func:`rules`: its output patterns
(with the rule's wildcards) and a function of the experiment and a job's wildcards that gives
the job's input files and its arguments (the rule's ``params``, which the step receives by
name). The rules of the tasks' declared data files, readings and figure sets are made here
from their declarations. The Snakemake rules, the ``losskernel`` command line and the tests all
take a job from :func:`job`, so a step runs the same way inside and outside Snakemake.

Results live under ``results/<experiment>/`` (model, per-experiment tables), its run
directories ``results/<experiment>/<run>/`` (traces, kernels, per-run and per-seed tables) and
``results/figures/<experiment>/``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from losskernel.job import Files, Job, paths
from losskernel.plan import Experiment, Plan, quoted_settings
from losskernel.tasks.protocol import DataFile, FigureSet, Reading, declared_settings

HEADLINE = "results/tables/headline.tsv"
MACROS = "paper/generated/macros.tex"


def experiment_file(experiment: str, name: str) -> str:
    return f"results/{experiment}/{name}"


def run_file(experiment: str, run: str, name: str) -> str:
    return f"results/{experiment}/{run}/{name}"


def figure_file(experiment: str, name: str) -> str:
    return f"results/figures/{experiment}/{name}.png"


Arguments = dict[str, Any]
Wildcards = Mapping[str, str]


@dataclass(frozen=True)
class Rule:
    """A rule: output patterns and the inputs and arguments of a job (``describe``)."""

    outputs: Mapping[str, str]
    describe: Callable[[Plan, Experiment | None, Wildcards], tuple[Files, Arguments]]
    step: str = ""
    """The function of ``losskernel.pipeline`` that runs a job (default: the rule's name)."""
    log_name: str = ""
    """A declared rule's job in its log and benchmark paths (the fixed rules' are literal in
    ``workflow/rules``)."""
    experiments: Callable[[Plan], list[str]] | None = None
    """The experiments the rule makes files for, when not all (its ``experiment``
    wildcard's constraint)."""

    @property
    def wildcards(self) -> list[str]:
        names = {field for pattern in self.outputs.values()
                 for _, field, _, _ in string.Formatter().parse(pattern) if field}
        return sorted(names)


def job(plan: Plan, rule: str, wildcards: Wildcards) -> Job:
    """The job of ``rule`` at ``wildcards``; ``KeyError`` names an unknown rule or run."""
    known = rules(plan)
    if rule not in known:
        raise KeyError(f"no rule {rule!r} in this workflow; its rules are {', '.join(known)}")
    experiment = plan.experiment(wildcards["experiment"]) if "experiment" in wildcards else None
    inputs, arguments = known[rule].describe(plan, experiment, wildcards)
    outputs = {name: pattern.format(**wildcards) for name, pattern in known[rule].outputs.items()}
    return Job(rule, known[rule].step or rule, dict(wildcards), inputs, outputs, arguments)


def rules(plan: Plan) -> dict[str, Rule]:
    """Every rule of the workflow for this plan: the fixed ones and the tasks' declared ones."""
    declared = {name: _declared_rule(plan, task_name, declaration)
                for name, (task_name, declaration) in declared_rules(plan).items()}
    return {**RULES, **declared}


def declared_rules(plan: Plan) -> dict[str, tuple[str, DataFile | Reading | FigureSet]]:
    """The data files, readings and figure sets of the configured tasks by rule name, each with
    the config name of a task that declares it."""
    found: dict[str, tuple[str, DataFile | Reading | FigureSet]] = {}
    for experiment in plan.experiments.values():
        task = experiment.task
        for declaration in (*task.DATA_FILES, *task.READINGS, *task.FIGURES):
            found.setdefault(declaration.rule, (experiment.settings["task"], declaration))
    return found


def targets(plan: Plan) -> list[str]:
    """Every file of rule ``all``: the checks, the headline table, the paper's macros, every
    figure."""
    return [*check_targets(plan), HEADLINE, MACROS,
            *(path for name in plan.experiments for path in figures(plan, name))]


def check_targets(plan: Plan) -> list[str]:
    """Every experiment's checks (rule ``check``): the gates its results passed."""
    return [experiment_file(name, "checks.tsv") for name in plan.experiments]


def calibration_targets(plan: Plan, experiments: Sequence[str] | None = None) -> list[str]:
    """The calibration's table and figure of each experiment (default: every one that samples
    a model of its own or another's; all do)."""
    return [path for name in (experiments or list(plan.experiments))
            for path in (experiment_file(name, "calibration.tsv"),
                         figure_file(name, "calibration"))]


def figures(plan: Plan, experiment: str) -> list[str]:
    """The figures of an experiment: its task's figure sets, then its appendix analyses'."""
    planned = plan.experiment(experiment)
    names = [figure.name for figure_set in planned.task.FIGURES
             for figure in figure_set.figures.values()]
    names += [name for analysis, figures in GENERIC_FIGURES.items()
              if analysis in planned.analysis for name in figures.values()]
    return [figure_file(experiment, name) for name in names]


def offering_targets(plan: Plan, figure_set: str) -> list[str]:
    """Every figure, headline row and check of the experiments whose task offers
    ``figure_set`` (the target ``figure1``: the whole branch of the experiments that draw
    Figure 1)."""
    names = [name for name, experiment in plan.experiments.items()
             if figure_set in (figures.name for figures in experiment.task.FIGURES)]
    return [path for name in names
            for path in (*figures(plan, name), experiment_file(name, "headline.tsv"),
                         experiment_file(name, "checks.tsv"))]


# The fixed rules ---------------------------------------------------------------------------


def _seed_file(experiment: Experiment, seed: object, name: str) -> str:
    return run_file(experiment.name, f"seed{seed}", name)


def _task(experiment: Experiment) -> str:
    return experiment.settings["task"]


def _train_model(plan, experiment, wildcards):
    return experiment.data_files(), {
        "task": _task(experiment), "settings": experiment.sections("data", "model", "training")}


def _import_model(plan, experiment, wildcards):
    pretrained = experiment.pretrained
    checkpoints = [path for _, path in pretrained.checkpoints]
    return {"weights": pretrained.weights, "training_checkpoints": checkpoints}, {
        "task": _task(experiment), "settings": experiment.sections("data", "model")}


def chain_blocks(num_chains: int, chains_per_job: int | str) -> list[range]:
    """The chains of a run that each sampling job runs: consecutive blocks of
    ``chains_per_job`` chains (``"all"``: one block), the last one shorter if need be."""
    size = num_chains if chains_per_job == "all" else int(chains_per_job)
    return [range(first, min(first + size, num_chains)) for first in range(0, num_chains, size)]


def block_name(chains: range) -> str:
    """The ``chain`` wildcard of a sampling job: ``3`` for one chain, ``0-3`` for chains 0..3."""
    return str(chains[0]) if len(chains) == 1 else f"{chains[0]}-{chains[-1]}"


def run_blocks(plan: Plan, experiment: Experiment, run_name: str) -> list[range]:
    """The blocks of chains of a run, one sampling job each (config key chains_per_job)."""
    return chain_blocks(experiment.run(run_name).sampling["num_chains"],
                        plan.config["chains_per_job"])  # the schema's default: all


def _sample_chain(plan, experiment, wildcards):
    run = experiment.run(wildcards["run"])
    blocks = {block_name(block): block for block in run_blocks(plan, experiment, run.name)}
    if wildcards["chain"] not in blocks:
        raise KeyError(f"run {run.name} of {experiment.name} samples its "
                       f"{run.sampling['num_chains']} chains (sampling.num_chains) in the jobs "
                       f"chain={', '.join(blocks)} (chains_per_job: "
                       f"{plan.config['chains_per_job']}), not chain="
                       f"{wildcards['chain']}")
    model = experiment_file(experiment.model_source,
                            "model.pt" if run.checkpoint is None else "checkpoints.pt")
    return {"model": model, **experiment.data_files()}, {
        "task": _task(experiment), "settings": experiment.sections("data", "kernel_inputs"),
        "seed": run.seed, "sampling": dict(run.sampling), "checkpoint": run.checkpoint,
        "chains": list(blocks[wildcards["chain"]]),
        "state_dir": run_file(experiment.name, run.name, "chains")}


def _merge_chains(plan, experiment, wildcards):
    run = experiment.run(wildcards["run"])
    return {"chains": [run_file(experiment.name, run.name, f"chains/chain{block_name(block)}.nc")
                       for block in run_blocks(plan, experiment, run.name)]}, {}


def _compute_kernel(plan, experiment, wildcards):
    run = experiment.run(wildcards["run"])
    return {"traces": run_file(experiment.name, run.name, "traces.nc")}, {
        "centring": experiment.settings["kernel"]["centring"]}


def _convergence(plan, experiment, wildcards):
    run = experiment.run(wildcards["run"])
    return {"traces": run_file(experiment.name, run.name, "traces.nc")}, {
        "centring": experiment.settings["kernel"]["centring"],
        "num_points": experiment.analysis["convergence"]["num_points"]}


def _mislabel_baselines(plan, experiment, wildcards):
    source = experiment.model_source
    return {"model": experiment_file(source, "model.pt"),
            "checkpoints": experiment_file(source, "checkpoints.pt"),
            **experiment.data_files()}, {
        "task": _task(experiment), "settings": experiment.sections("data", "kernel_inputs"),
        "mislabels": experiment.analysis["mislabels"]}


def _input_features(plan, experiment, wildcards):
    return {"model": experiment_file(experiment.model_source, "model.pt"),
            **experiment.data_files()}, {
        "task": _task(experiment), "settings": experiment.sections("data", "kernel_inputs"),
        "eval_batch_size": experiment.settings["sampling"]["eval_batch_size"],
        "device": experiment.settings["sampling"]["device"]}


def _mislabel_detection(plan, experiment, wildcards):
    seed = wildcards["seed"]
    return {"covariance": _seed_file(experiment, seed, "kernel-covariance.nc"),
            "traces": _seed_file(experiment, seed, "traces.nc"),
            "baselines": experiment_file(experiment.name, "mislabel-baselines.tsv")}, {}


def _per_run(experiment: Experiment, runs: list[str], name: str) -> list[str]:
    return [run_file(experiment.name, run, name) for run in runs]


def _gamma_sweep(plan, experiment, wildcards):
    runs = experiment.gamma_runs
    pair = [runs[experiment.nearest_gamma_index], experiment.gamma_replica[0]]
    return {"covariance": _per_run(experiment, runs, "kernel-covariance.nc"),
            "correlation": _per_run(experiment, runs, "kernel-correlation.nc"),
            "replica_covariance": _per_run(experiment, pair, "kernel-covariance.nc"),
            "replica_correlation": _per_run(experiment, pair, "kernel-correlation.nc")}, {
        "task": _task(experiment), "gamma_sweep": experiment.analysis["gamma_sweep"],
        "replica": {"gamma": experiment.gamma_replica[1],
                    "seeds": [experiment.gamma_seeds[experiment.nearest_gamma_index],
                              experiment.gamma_replica[2]]}}


def _diagnose_run(plan, experiment, wildcards):
    run = experiment.run(wildcards["run"])
    return {"traces": run_file(experiment.name, run.name, "traces.nc")}, {
        "run_label": f"{experiment.name}/{run.name}",
        "bounds": experiment.analysis["diagnostics"]}


def _diagnostics(plan, experiment, wildcards):
    main = experiment.main_runs
    return {"summaries": _per_run(experiment, list(experiment.runs), "diagnostics-summary.tsv"),
            "covariance": _per_run(experiment, main, "kernel-covariance.nc"),
            "correlation": _per_run(experiment, main, "kernel-correlation.nc")}, {
        "runs": list(experiment.runs), "main_runs": main}


def _plot_diagnostics(plan, experiment, wildcards):
    main = experiment.main_runs
    return {"runs": experiment_file(experiment.name, "diagnostics.tsv"),
            "inputs": _per_run(experiment, main, "diagnostics.tsv")}, {
        "experiment": experiment.name, "main_runs": main,
        "bounds": experiment.analysis["diagnostics"]}


def _calibration_point(plan, experiment, wildcards):
    setting = experiment.calibration_setting(wildcards["point"])
    calibration = experiment.analysis["calibration"]
    sampling = {key: value for key, value in experiment.settings["sampling"].items()
                if key != "seeds"}
    return {"model": experiment_file(experiment.model_source, "model.pt"),
            **experiment.data_files()}, {
        "task": _task(experiment), "settings": experiment.sections("data", "kernel_inputs"),
        "seed": calibration["seed"],
        "sampling": {**sampling, **setting, "num_chains": calibration["num_chains"],
                     "num_draws": calibration["num_draws"]}}


def _calibrate_experiment(plan, experiment, wildcards):
    calibration, sampling = experiment.analysis["calibration"], experiment.settings["sampling"]
    return {"points": [experiment_file(experiment.name, f"calibration/{point}.tsv")
                       for point in experiment.calibration_points]}, {
        "experiment": experiment.name,
        "configured": {key: sampling[key] for key in ("step_size", "nbeta", "localization")},
        "bounds": {**experiment.analysis["diagnostics"],
                   "min_control_z": calibration["min_control_z"]},
        "main_draws": sampling["num_draws"], "calibration_draws": calibration["num_draws"]}


def _trajectory(plan, experiment, wildcards):
    runs = experiment.checkpoint_runs
    return {"covariance": _per_run(experiment, runs, "kernel-covariance.nc"),
            "correlation": _per_run(experiment, runs, "kernel-correlation.nc")}, {
        "task": _task(experiment), "knn_k": experiment.analysis.get("knn_k"),
        "hierarchy": experiment.analysis.get("hierarchy")}


def _summarize_experiment(plan, experiment, wildcards):
    return {"seed_metrics": [_seed_file(experiment, seed, f"{reading}.tsv")
                             for seed in experiment.seeds for reading in experiment.seed_readings],
            "experiment_metrics": [experiment_file(experiment.name, f"{reading}-metrics.tsv")
                                   for reading in experiment.experiment_readings]}, {
        "experiment": experiment.name, "seeds": experiment.seeds,
        "headline_metrics": experiment.headline_metrics}


def _check_experiment(plan, experiment, wildcards):
    inputs = {"headline": experiment_file(experiment.name, "headline.tsv"),
              "summary": experiment_file(experiment.name, "summary.tsv"),
              "model": experiment_file(experiment.model_source, "model.pt")}
    if "diagnostics" in experiment.analysis:
        inputs["diagnostics"] = experiment_file(experiment.name, "diagnostics.tsv")
    source = plan.experiment(experiment.model_source)
    return inputs, {
        "experiment": experiment.name, "seeds": experiment.seeds,
        "main_runs": experiment.main_runs, "checks": experiment.analysis["checks"],
        "trained": experiment.model_source in plan.trained,
        "allow_unconverged": source.settings.get("training", {}).get("allow_unconverged",
                                                                      False)}


def _headline_table(plan, experiment, wildcards):
    # the checks are inputs, so a failed gate stops the table and the paper's macros
    return {"fragments": [experiment_file(name, "headline.tsv") for name in plan.experiments],
            "checks": check_targets(plan)}, {}


def _embed_umap(plan, experiment, wildcards):
    runs = [f"seed{experiment.analysis['figure_seed']}", *experiment.checkpoint_runs]
    return {"correlation": _per_run(experiment, runs, "kernel-correlation.nc")}, {
        "task": _task(experiment), "umap": experiment.analysis["umap"]}


def _plot_gamma_sweep(plan, experiment, wildcards):
    return {"cka": experiment_file(experiment.name, "gamma-sweep-cka.tsv"),
            "ceiling": experiment_file(experiment.name, "gamma-sweep-ceiling.tsv"),
            "lift": experiment_file(experiment.name, "gamma-sweep-lift.tsv"),
            "convergence": _per_run(experiment, experiment.gamma_runs,
                                    "convergence-curve.tsv")}, {
        "experiment": experiment.name,
        "localizations": experiment.analysis["gamma_sweep"]["localizations"]}


def _plot_mislabels(plan, experiment, wildcards):
    seed = experiment.analysis["figure_seed"]
    return {"scores": _seed_file(experiment, seed, "mislabel-scores.tsv"),
            "metrics": _seed_file(experiment, seed, "mislabels.tsv"),
            "embedding": experiment_file(experiment.name, "umap.tsv")}, {
        "experiment": experiment.name, "figure_seed": seed}


def _plot_trajectory(plan, experiment, wildcards):
    return {"table": experiment_file(experiment.name, "trajectory.tsv"),
            "embedding": experiment_file(experiment.name, "umap.tsv")}, {
        "experiment": experiment.name}


def _paper_macros(plan, experiment, wildcards):
    return {"headline": HEADLINE}, {"settings": quoted_settings(plan)}


EXPERIMENT, RUN = "results/{experiment}", "results/{experiment}/{run}"
SEED, FIGURES = "results/{experiment}/seed{seed}", "results/figures/{experiment}"
RULES: dict[str, Rule] = {
    "train_model": Rule({"model": f"{EXPERIMENT}/model.pt",
                         "checkpoints": f"{EXPERIMENT}/checkpoints.pt",
                         "history": f"{EXPERIMENT}/training.tsv"}, _train_model,
                        experiments=lambda plan: plan.trained),
    "import_model": Rule({"model": f"{EXPERIMENT}/model.pt",
                          "checkpoints": f"{EXPERIMENT}/checkpoints.pt"}, _import_model,
                         experiments=lambda plan: plan.pretrained),
    "sample_chain": Rule({"traces": f"{RUN}/chains/chain{{chain}}.nc"}, _sample_chain),
    "merge_chains": Rule({"traces": f"{RUN}/traces.nc"}, _merge_chains),
    "compute_kernel": Rule({"covariance": f"{RUN}/kernel-covariance.nc",
                            "correlation": f"{RUN}/kernel-correlation.nc"}, _compute_kernel),
    "convergence": Rule({"curve": f"{RUN}/convergence-curve.tsv",
                         "metrics": f"{RUN}/convergence.tsv"}, _convergence),
    "mislabel_baselines": Rule({"scores": f"{EXPERIMENT}/mislabel-baselines.tsv"},
                               _mislabel_baselines),
    "input_features": Rule({"features": f"{EXPERIMENT}/input-features.nc"}, _input_features),
    "mislabel_detection": Rule({"metrics": f"{SEED}/mislabels.tsv",
                                "scores": f"{SEED}/mislabel-scores.tsv"}, _mislabel_detection),
    "gamma_sweep": Rule({"cka": f"{EXPERIMENT}/gamma-sweep-cka.tsv",
                         "lift": f"{EXPERIMENT}/gamma-sweep-lift.tsv",
                         "ceiling": f"{EXPERIMENT}/gamma-sweep-ceiling.tsv"}, _gamma_sweep),
    "diagnose_run": Rule({"table": f"{RUN}/diagnostics.tsv",
                          "summary": f"{RUN}/diagnostics-summary.tsv"}, _diagnose_run),
    "diagnostics": Rule({"table": f"{EXPERIMENT}/diagnostics.tsv",
                         "metrics": f"{EXPERIMENT}/diagnostics-metrics.tsv"}, _diagnostics),
    "plot_diagnostics": Rule({"diagnostics": f"{FIGURES}/diagnostics.png"}, _plot_diagnostics),
    "calibration_point": Rule({"summary": f"{EXPERIMENT}/calibration/{{point}}.tsv"},
                              _calibration_point),
    "calibrate_experiment": Rule({"table": f"{EXPERIMENT}/calibration.tsv",
                                  "figure": f"{FIGURES}/calibration.png"},
                                 _calibrate_experiment),
    "trajectory": Rule({"table": f"{EXPERIMENT}/trajectory.tsv",
                        "metrics": f"{EXPERIMENT}/trajectory-metrics.tsv"}, _trajectory),
    "summarize_experiment": Rule({"summary": f"{EXPERIMENT}/summary.tsv",
                                  "headline": f"{EXPERIMENT}/headline.tsv"},
                                 _summarize_experiment),
    "check_experiment": Rule({"checks": f"{EXPERIMENT}/checks.tsv"}, _check_experiment),
    "headline_table": Rule({"table": HEADLINE, "html": "results/tables/headline.html"},
                           _headline_table),
    "embed_umap": Rule({"embedding": f"{EXPERIMENT}/umap.tsv"}, _embed_umap),
    "plot_gamma_sweep": Rule({"cka": f"{FIGURES}/gamma_cka.png",
                              "lift": f"{FIGURES}/gamma_lift.png",
                              "convergence": f"{FIGURES}/convergence.png"}, _plot_gamma_sweep),
    "plot_mislabels": Rule({"roc": f"{FIGURES}/mislabel_roc.png",
                            "self_covariance": f"{FIGURES}/self_covariance.png",
                            "umap": f"{FIGURES}/umap_mislabels.png"}, _plot_mislabels),
    "plot_trajectory": Rule({"score": f"{FIGURES}/trajectory_score.png",
                             "umap": f"{FIGURES}/trajectory_umap.png"}, _plot_trajectory),
    "paper_macros": Rule({"macros": MACROS}, _paper_macros),
}
GENERIC_FIGURES: dict[str, Mapping[str, str]] = {
    # analysis section -> the figures of its rule, output name -> figure name
    analysis: {output: pattern.rsplit("/", 1)[1].removesuffix(".png")
               for output, pattern in RULES[rule].outputs.items()}
    for analysis, rule in (("mislabels", "plot_mislabels"), ("gamma_sweep", "plot_gamma_sweep"),
                           ("trajectory", "plot_trajectory"), ("diagnostics", "plot_diagnostics"))}


# The rules of the tasks' declarations ------------------------------------------------------


def declared_wildcards(declaration: DataFile | Reading | FigureSet) -> list[str]:
    """The wildcards of a declared rule: none for a data file, an experiment's seed for a
    reading, an experiment for a figure set."""
    if isinstance(declaration, DataFile):
        return []
    return ["experiment", "seed"] if isinstance(declaration, Reading) else ["experiment"]


def _declared_rule(plan: Plan, task_name: str,
                   declaration: DataFile | Reading | FigureSet) -> Rule:
    if isinstance(declaration, DataFile):
        return Rule({"table": declaration.path}, lambda plan, experiment, wildcards: ({}, {
            "task": task_name, "file": declaration.key,
            "settings": {key: plan.config[key] for key in declaration.config_keys}}),
            step="make_data_file", log_name=declaration.key)
    if isinstance(declaration, Reading):
        return Rule({"metrics": f"{SEED}/{declaration.name}.tsv",
                     **{name: f"{SEED}/{file}" for name, file in declaration.tables.items()}},
                    lambda plan, experiment, wildcards: ({
                        **{name: _seed_file(experiment, wildcards["seed"], file)
                           for name, file in declaration.inputs.items()},
                        **{name: experiment_file(experiment.name, file)
                           for name, file in declaration.experiment_inputs.items()}}, {
                        "task": _task(experiment), "reading": declaration.name,
                        "settings": declared_settings(experiment.settings,
                                                      declaration.settings)}),
                    step="score_reading", log_name="{experiment}/seed{seed}",
                    experiments=lambda plan: _offering(plan, declaration))
    return Rule({output: f"{FIGURES}/{figure.name}.png"
                 for output, figure in declaration.figures.items()},
                lambda plan, experiment, wildcards: (_figure_inputs(experiment, declaration), {
                    "experiment": experiment.name, "task": _task(experiment),
                    "figures": declaration.name,
                    "settings": declared_settings(experiment.settings, declaration.settings)}),
                step="plot_figures", log_name="{experiment}",
                experiments=lambda plan: _offering(plan, declaration))


def _figure_inputs(experiment: Experiment, figure_set: FigureSet) -> Files:
    """A figure set's input files: at the figure seed, at every seed, or the experiment's."""
    figure_seed = experiment.analysis["figure_seed"]
    located: dict[str, Callable[[str], str | list[str]]] = {
        "figure_seed": lambda name: _seed_file(experiment, figure_seed, name),
        "every_seed": lambda name: [_seed_file(experiment, seed, name)
                                    for seed in experiment.seeds],
        "experiment": lambda name: experiment_file(experiment.name, name),
    }
    return {name: located[scope](file) for name, (scope, file) in figure_set.inputs.items()}


def _offering(plan: Plan, declaration: Reading | FigureSet) -> list[str]:
    return [name for name, experiment in plan.experiments.items()
            if declaration in (*experiment.task.READINGS, *experiment.task.FIGURES)]


# From files to the jobs that make them --------------------------------------------------

WILDCARD_PATTERNS: dict[str, str] = {
    "run": r"seed\d+|gamma[0-9.e+-]+(?:-seed\d+)?|checkpoint\d+",
    "point": r"eps[0-9.e+-]+-nbeta[0-9.e+-]+-gamma[0-9.e+-]+",
    "seed": r"\d+",
    "chain": r"\d+(?:-\d+)?",
}
"""What each wildcard matches (the experiment's: the experiments of the rule)."""


def wildcard_constraint(plan: Plan, rule: str, wildcard: str) -> str:
    """The regular expression a wildcard of ``rule`` matches."""
    if wildcard != "experiment":
        return WILDCARD_PATTERNS[wildcard]
    allowed = rules(plan)[rule].experiments
    names = list(plan.experiments) if allowed is None else allowed(plan)
    return "|".join(re.escape(name) for name in names) or "(?!)"  # none: matches nothing


def matches(plan: Plan, rule: str, pattern: str, path: str) -> dict[str, str] | None:
    """The wildcards with which ``pattern`` (an output of ``rule``) gives ``path``, or None."""
    regex = "".join(
        re.escape(literal) + (f"(?P<{field}>{wildcard_constraint(plan, rule, field)})"
                              if field else "")
        for literal, field, _, _ in string.Formatter().parse(pattern))
    found = re.fullmatch(regex, path)
    return None if found is None else found.groupdict()


def producer(plan: Plan, path: str) -> tuple[str, dict[str, str]] | None:
    """The rule and wildcards of the job that makes ``path``; None for a file no rule makes
    (a data root, pretrained weights)."""
    for name, rule in rules(plan).items():
        for pattern in rule.outputs.values():
            wildcards = matches(plan, name, pattern, path)
            if wildcards is not None:
                return name, wildcards
    return None


def jobs_for(plan: Plan, files: Sequence[str]) -> list[Job]:
    """Every job needed to make ``files`` from files no rule makes, each once, every job after
    the jobs it reads from (what ``snakemake -n`` plans in a fresh directory)."""
    ordered: dict[tuple[str, tuple], Job] = {}

    def visit(path: str) -> None:
        made = producer(plan, path)
        if made is None:
            return
        key = (made[0], tuple(sorted(made[1].items())))
        if key in ordered:
            return
        needed = job(plan, *made)
        for path_in in paths(needed.inputs):
            visit(path_in)
        ordered[key] = needed

    for path in files:
        visit(path)
    return list(ordered.values())
