# Config validation, wildcard constraints and input functions shared by every rule.

import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Validation uses the package from this checkout (as the scripts do), installed or not.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from losskernel.config import (
    ConfigError,
    experiment_readings,
    model_source,
    quoted_settings,
    resolve_experiments,
    seed_readings,
    validate_config,
)
from losskernel.experiments import get_task

try:
    validate_config(
        config,
        Path(workflow.current_basedir) / "../schemas/config.schema.yaml",
        source="the config file(s) given to snakemake (default config/config.yaml)",
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None


# Experiments with model_from get their source's task, data, model and training sections.
config.update(resolve_experiments(config))
EXPERIMENTS = list(config["experiments"])


def is_pretrained(name):
    """The experiment loads pretrained weights (ImageNet) instead of training its model."""
    return config["experiments"][name]["model"].get("source") == "pretrained"


OWN_MODEL = [name for name in EXPERIMENTS if model_source(config, name) == name]
TRAINED = [name for name in OWN_MODEL if not is_pretrained(name)]
PRETRAINED = [name for name in OWN_MODEL if is_pretrained(name)]
IMAGENET = [name for name in EXPERIMENTS if config["experiments"][name]["task"] == "imagenet"]
# The place of every ImageNet-1k class in WordNet, shared by the ImageNet experiments.
HIERARCHY_TABLE = "results/wordnet/imagenet1k-hierarchy.tsv"


# A run is one SGLD sampling (all chains) and its own directory: `seed<S>` (the experiment's
# sampling settings, one per seed), `gamma<γ>` (the γ sweep) or `checkpoint<i>` (the i-th
# checkpoint of the developmental trajectory).
wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    seed=r"\d+",
    run=r"seed\d+|gamma[0-9.e+-]+|checkpoint\d+",
    kind="covariance|correlation",
    chain=r"\d+",


def experiment(wildcards):
    """The config section of the experiment named by the wildcard."""
    return config["experiments"][wildcards.experiment]


def data_settings(wildcards):
    """The data section as the task's code takes it: ImageNet's also names the hierarchy table
    (an input of the rules that read the data)."""
    settings = experiment(wildcards)
    if settings["task"] == "imagenet":
        return {**settings["data"], "hierarchy": HIERARCHY_TABLE}
    return settings["data"]


def data_files(wildcards):
    """Files the task's data needs besides the code (the WordNet table for ImageNet)."""
    return [HIERARCHY_TABLE] if experiment(wildcards)["task"] == "imagenet" else []


def trained_model(wildcards):
    """The model an experiment samples around: its own, or that of its `model_from`."""
    return f"results/{model_source(config, wildcards.experiment)}/model.pt"


def sampling_settings(wildcards):
    """The sampling section without `seeds`: adding a seed must not rerun the other seeds."""
    return {k: v for k, v in experiment(wildcards)["sampling"].items() if k != "seeds"}


def gamma_label(gamma):
    return f"{gamma:g}"


def run_settings(wildcards):
    """What the run of the wildcards samples: its seed, its sampling settings and, for a
    trajectory run, which checkpoint. Only this run's settings, so that changing another
    run's settings (another γ, another seed) does not rerun it."""
    kind, value = re.fullmatch(r"(seed|gamma|checkpoint)(.+)", wildcards.run).groups()
    analysis, sampling = experiment(wildcards)["analysis"], sampling_settings(wildcards)
    if kind == "seed":
        return {"seed": int(value), "sampling": sampling, "checkpoint": None}
    if kind == "gamma":
        sweep = analysis["gamma_sweep"]
        matches = [g for g in sweep["localizations"] if gamma_label(g) == value]
        if not matches:
            raise WorkflowError(f"{wildcards.run}: γ {value} is not in "
                                f"experiments.{wildcards.experiment}.analysis.gamma_sweep")
        return {"seed": sweep["seed"], "sampling": {**sampling, "localization": matches[0]},
                "checkpoint": None}
    trajectory = analysis["trajectory"]
    return {"seed": trajectory["seed"], "sampling": {**sampling, **trajectory["sampling"]},
            "checkpoint": {"index": int(value),
                           "num_checkpoints": trajectory["num_checkpoints"]}}


def run_chain_files(wildcards):
    """The per-chain trace files of a run, chains 0..num_chains-1 of its sampling settings."""
    count = run_settings(wildcards)["sampling"]["num_chains"]
    return [f"results/{wildcards.experiment}/{wildcards.run}/chains/chain{chain}.nc"
            for chain in range(count)]


def run_model(wildcards):
    """The weights a run samples around: the final model, or the checkpoints file."""
    source = model_source(config, wildcards.experiment)
    name = "checkpoints" if wildcards.run.startswith("checkpoint") else "model"
    return f"results/{source}/{name}.pt"


def gamma_runs(wildcards):
    """The run directory of each γ of the sweep, in config order. A γ equal to the sampling
    localization reuses the main run of the sweep's seed when that seed is sampled anyway."""
    settings = experiment(wildcards)
    sweep, sampling = settings["analysis"]["gamma_sweep"], settings["sampling"]
    reuse = sweep["seed"] in sampling["seeds"]
    return [f"seed{sweep['seed']}" if reuse and gamma == sampling["localization"]
            else f"gamma{gamma_label(gamma)}" for gamma in sweep["localizations"]]


def per_gamma(pattern):
    """Input function: `pattern` (with {run}) for each γ of the sweep."""
    return lambda wildcards: [pattern.format(experiment=wildcards.experiment, run=run)
                              for run in gamma_runs(wildcards)]


def per_checkpoint(pattern):
    """Input function: `pattern` (with {run}) for each checkpoint of the trajectory."""
    def paths(wildcards):
        count = experiment(wildcards)["analysis"]["trajectory"]["num_checkpoints"]
        return [pattern.format(experiment=wildcards.experiment, run=f"checkpoint{index}")
                for index in range(count)]
    return paths


def seed_metric_files(wildcards):
    """Every per-seed metric table of the experiment, as {seed: [paths]} in config order."""
    settings = experiment(wildcards)
    return {seed: [f"results/{wildcards.experiment}/seed{seed}/{reading}.tsv"
                   for reading in seed_readings(settings)]
            for seed in settings["sampling"]["seeds"]}


def experiment_metric_files(wildcards):
    return [f"results/{wildcards.experiment}/{reading}-metrics.tsv"
            for reading in experiment_readings(experiment(wildcards))]


def embedded_kernels(wildcards):
    """The correlation kernels the UMAP step embeds: the figure seed's and the trajectory's."""
    settings = experiment(wildcards)
    paths = figure_seed_file("results/{experiment}/seed{seed}/kernel-correlation.nc")(wildcards)
    trajectory = per_checkpoint("results/{experiment}/{run}/kernel-correlation.nc")
    return [paths, *(trajectory(wildcards) if "trajectory" in settings["analysis"] else [])]


def seeds(wildcards):
    return experiment(wildcards)["sampling"]["seeds"]


def per_seed(pattern):
    """Input function: `pattern` expanded over the experiment's SGLD seeds."""
    return lambda wildcards: expand(pattern, experiment=wildcards.experiment,
                                    seed=seeds(wildcards))


def figure_seed_file(pattern):
    """Input function: `pattern` at the experiment's figure seed."""
    return lambda wildcards: pattern.format(
        experiment=wildcards.experiment, seed=experiment(wildcards)["analysis"]["figure_seed"]
    )


FIGURES = {
    # analysis (or task) -> the figures it draws under results/figures/<experiment>/
    "separation": ["kernel_heatmap", "kernel_distributions", "umap", "roc"],
    "mislabels": ["mislabel_roc", "self_covariance", "umap_mislabels"],
    "gamma_sweep": ["gamma_cka", "gamma_lift", "convergence"],
    "trajectory": ["trajectory_score", "trajectory_umap"],
    "figure1": ["umap_hierarchy", "umap_hierarchy_3d", "kernel_vs_wordnet",
                "neighbourhood_insets", "taxonomic_lift"],
}


def experiment_figures(name):
    settings = config["experiments"][name]
    analyses = [a for a in FIGURES if a in settings["analysis"]]
    if settings["task"] == "modular_arithmetic":
        analyses.insert(0, "separation")
    return [f"results/figures/{name}/{figure}.png"
            for analysis in analyses for figure in FIGURES[analysis]]


def all_targets():
    return [
        "results/tables/headline.tsv",
        "paper/generated/macros.tex",
        *(path for name in EXPERIMENTS for path in experiment_figures(name)),
    ]
