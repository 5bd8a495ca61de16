# Config validation, wildcard constraints and input functions shared by every rule.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Validation uses the package from this checkout (as the scripts do), installed or not.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from losskernel.config import (
    ConfigError,
    model_source,
    quoted_settings,
    resolve_experiments,
    validate_config,
)

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
TRAINED = [name for name in EXPERIMENTS if model_source(config, name) == name]


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    seed=r"\d+",
    kind="covariance|correlation",


def experiment(wildcards):
    """The config section of the experiment named by the wildcard."""
    return config["experiments"][wildcards.experiment]


def trained_model(wildcards):
    """The model an experiment samples around: its own, or that of its `model_from`."""
    return f"results/{model_source(config, wildcards.experiment)}/model.pt"


def sampling_settings(wildcards):
    """The sampling section without `seeds`: adding a seed must not rerun the other seeds."""
    return {k: v for k, v in experiment(wildcards)["sampling"].items() if k != "seeds"}


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


FIGURES = ["kernel_heatmap", "kernel_distributions", "umap", "roc"]


def all_targets():
    return [
        "results/tables/headline.tsv",
        "paper/generated/macros.tex",
        *expand("results/figures/{experiment}/{figure}.png", experiment=EXPERIMENTS,
                figure=FIGURES),
    ]
