"""What each job of the workflow is told: its rule's ``params``, from the plan.

The rules of ``workflow/rules/*.smk`` write the files a job reads and writes; Snakemake
resolves them. A rule's ``params`` are :func:`job_params` of the rule at the job's wildcards:
the settings its step receives by keyword (``losskernel.pipeline``), each job only its own, so
changing one run's settings reruns that run's jobs and nothing else. The tasks' declared data
files, readings and figure sets are rules too (``workflow/rules/tasks.smk``); their params are
here as well. Nothing here names a file of ``results/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from losskernel.manifest import tree_stamp
from losskernel.plan import Experiment, Plan, quoted_settings
from losskernel.tasks.protocol import DataFile, FigureSet, Reading, declared_settings

Arguments = dict[str, Any]
Wildcards = Mapping[str, str]


def job_params(plan: Plan, rule: str, wildcards: Wildcards) -> Arguments:
    """The params of ``rule``'s job at ``wildcards``; ``KeyError`` names an unknown rule, run,
    chain block or calibration point, with the ones there are."""
    declared = plan.declarations()
    if rule not in PARAMS and rule not in declared:
        raise KeyError(f"no rule {rule!r} in this workflow; its rules are "
                       f"{', '.join([*PARAMS, *declared])}")
    experiment = plan.experiment(wildcards["experiment"]) if "experiment" in wildcards else None
    if rule in declared:
        return _declared_params(plan, *declared[rule], experiment)
    return PARAMS[rule](plan, experiment, wildcards)


def _task(experiment: Experiment) -> str:
    return experiment.settings["task"]


def _train_model(plan: Plan, experiment: Experiment, wildcards: Wildcards) -> Arguments:
    # allow_unconverged is the gate's (accept_model), not training's: allowing a refused
    # model must not retrain it
    training = {key: value for key, value in experiment.settings["training"].items()
                if key != "allow_unconverged"}
    return {"task": _task(experiment),
            "settings": {**experiment.sections("data", "model"), "training": training}}


def _sample_chain(plan: Plan, experiment: Experiment, wildcards: Wildcards) -> Arguments:
    run = experiment.run(wildcards["run"])
    blocks = plan.run_blocks(experiment.name, run.name)
    if wildcards["chain"] not in blocks:
        raise KeyError(f"run {run.name} of {experiment.name} samples its "
                       f"{run.sampling['num_chains']} chains (sampling.num_chains) in the jobs "
                       f"chain={', '.join(blocks)} (chains_per_job: "
                       f"{plan.config['chains_per_job']}), not chain={wildcards['chain']}")
    return {"task": _task(experiment), "settings": experiment.sections("data", "kernel_inputs"),
            "seed": run.seed, "sampling": dict(run.sampling), "checkpoint": run.checkpoint,
            "chains": list(blocks[wildcards["chain"]])}


def _gamma_sweep(plan: Plan, experiment: Experiment, wildcards: Wildcards) -> Arguments:
    return {"task": _task(experiment), "gamma_sweep": experiment.analysis["gamma_sweep"],
            "replica": {"gamma": experiment.gamma_replica[1],
                        "seeds": [experiment.gamma_seeds[experiment.nearest_gamma_index],
                                  experiment.gamma_replica[2]]}}


def _check_experiment(plan: Plan, experiment: Experiment, wildcards: Wildcards) -> Arguments:
    source = plan.experiment(experiment.model_source)
    return {"experiment": experiment.name, "seeds": experiment.seeds,
            "main_runs": experiment.main_runs, "checks": experiment.analysis["checks"],
            "trained": experiment.model_source in plan.trained,
            "allow_unconverged": source.settings.get("training", {}).get("allow_unconverged",
                                                                          False)}


def _calibration_point(plan: Plan, experiment: Experiment, wildcards: Wildcards) -> Arguments:
    setting = experiment.calibration_setting(wildcards["point"])
    calibration = experiment.analysis["calibration"]
    sampling = {key: value for key, value in experiment.settings["sampling"].items()
                if key != "seeds"}
    return {"task": _task(experiment), "settings": experiment.sections("data", "kernel_inputs"),
            "seed": calibration["seed"],
            "sampling": {**sampling, **setting, "num_chains": calibration["num_chains"],
                         "num_draws": calibration["num_draws"]}}


def _calibrate_experiment(plan: Plan, experiment: Experiment,
                          wildcards: Wildcards) -> Arguments:
    calibration, sampling = experiment.analysis["calibration"], experiment.settings["sampling"]
    return {"experiment": experiment.name,
            "configured": {key: sampling[key] for key in ("step_size", "nbeta", "localization")},
            "bounds": {**experiment.analysis["diagnostics"],
                       "min_control_z": calibration["min_control_z"]},
            "main_draws": sampling["num_draws"], "calibration_draws": calibration["num_draws"]}


def _record_data(plan: Plan, experiment: None, wildcards: Wildcards) -> Arguments:
    source = plan.data_sources[wildcards["source"]]
    return {"source": source.name, "origin": source.origin, "files": list(source.files),
            "tree": source.tree, "tree_stamp": tree_stamp(source.tree) if source.tree else ""}


PARAMS: dict[str, Callable[[Plan, Any, Wildcards], Arguments]] = {
    "record_data": _record_data,
    "train_model": _train_model,
    "accept_model": lambda plan, experiment, wildcards: {
        "experiment": experiment.name,
        "allow_unconverged": experiment.settings["training"]["allow_unconverged"]},
    "describe_model": lambda plan, experiment, wildcards: {},
    "import_model": lambda plan, experiment, wildcards: {
        "task": _task(experiment), "settings": experiment.sections("data", "model")},
    "sample_chain": _sample_chain,
    "merge_chains": lambda plan, experiment, wildcards: {},
    "compute_kernel": lambda plan, experiment, wildcards: {
        "centring": experiment.settings["kernel"]["centring"]},
    "convergence": lambda plan, experiment, wildcards: {
        "centring": experiment.settings["kernel"]["centring"],
        "num_points": experiment.analysis["convergence"]["num_points"]},
    "mislabel_baselines": lambda plan, experiment, wildcards: {
        "task": _task(experiment), "settings": experiment.sections("data", "kernel_inputs"),
        "mislabels": experiment.analysis["mislabels"]},
    "input_features": lambda plan, experiment, wildcards: {
        "task": _task(experiment), "settings": experiment.sections("data", "kernel_inputs"),
        "eval_batch_size": experiment.settings["sampling"]["eval_batch_size"],
        "device": experiment.settings["sampling"]["device"]},
    "mislabel_detection": lambda plan, experiment, wildcards: {},
    "gamma_sweep": _gamma_sweep,
    "diagnose_run": lambda plan, experiment, wildcards: {
        "run_label": f"{experiment.name}/{experiment.run(wildcards['run']).name}",
        "bounds": experiment.analysis["diagnostics"]},
    "diagnostics": lambda plan, experiment, wildcards: {
        "runs": list(experiment.runs), "main_runs": experiment.main_runs},
    "plot_diagnostics": lambda plan, experiment, wildcards: {
        "experiment": experiment.name, "main_runs": experiment.main_runs,
        "bounds": experiment.analysis["diagnostics"]},
    "calibration_point": _calibration_point,
    "calibrate_experiment": _calibrate_experiment,
    "trajectory": lambda plan, experiment, wildcards: {
        "task": _task(experiment), "knn_k": experiment.analysis.get("knn_k"),
        "hierarchy": experiment.analysis.get("hierarchy")},
    "summarize_experiment": lambda plan, experiment, wildcards: {
        "experiment": experiment.name, "seeds": experiment.seeds,
        "headline_metrics": experiment.headline_metrics},
    "check_experiment": _check_experiment,
    "summarize_models": lambda plan, experiment, wildcards: {
        "experiment": experiment.name,
        "runs_behind": {metric: experiment.runs_behind(metric)
                        for metric in experiment.headline_metrics},
        "bounds": {"max_rhat": experiment.analysis["checks"]["max_rhat"],
                   "min_median_ess": experiment.analysis["diagnostics"]["min_median_ess"]},
        "comparisons": experiment.settings["comparisons"]},
    "headline_table": lambda plan, experiment, wildcards: {},
    "embed_umap": lambda plan, experiment, wildcards: {
        "task": _task(experiment), "umap": experiment.analysis["umap"]},
    "plot_gamma_sweep": lambda plan, experiment, wildcards: {
        "experiment": experiment.name,
        "localizations": experiment.analysis["gamma_sweep"]["localizations"]},
    "plot_mislabels": lambda plan, experiment, wildcards: {
        "experiment": experiment.name, "figure_seed": experiment.analysis["figure_seed"]},
    "plot_trajectory": lambda plan, experiment, wildcards: {"experiment": experiment.name},
    "paper_macros": lambda plan, experiment, wildcards: {"settings": quoted_settings(plan)},
    "summarize_sweep": lambda plan, experiment, wildcards: {
        "sweep": wildcards["sweep"],
        **{key: plan.sweep(wildcards["sweep"])[key]
           for key in ("experiments", "x", "label", "panels")}},
    "plot_sweep": lambda plan, experiment, wildcards: {"sweep": wildcards["sweep"]},
    "crate": lambda plan, experiment, wildcards: {},
}
"""The params of each rule of ``workflow/rules/*.smk`` (but the tasks' declared ones), as a
function of the plan, the job's experiment (None for a rule without one) and its wildcards."""


def _declared_params(plan: Plan, task_name: str, declaration: DataFile | Reading | FigureSet,
                     experiment: Experiment | None) -> Arguments:
    if isinstance(declaration, DataFile):
        return {"task": task_name, "file": declaration.key,
                "settings": {key: plan.config[key] for key in declaration.config_keys}}
    assert experiment is not None  # a reading's or a figure set's job is an experiment's
    settings = declared_settings(experiment.settings, declaration.settings)
    if isinstance(declaration, Reading):
        return {"task": _task(experiment), "reading": declaration.name, "settings": settings}
    return {"experiment": experiment.name, "task": _task(experiment),
            "figures": declaration.name, "settings": settings}
