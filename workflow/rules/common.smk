# Config validation, wildcard constraints and input functions shared by every rule.

from pathlib import Path

from snakemake.exceptions import WorkflowError

from losskernel.config import ConfigError, quoted_settings, validate_config

try:
    validate_config(
        config,
        Path(workflow.current_basedir) / "../schemas/config.schema.yaml",
        source="the config file(s) given to snakemake (default config/config.yaml)",
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None


EXPERIMENTS = list(config["experiments"])


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    seed=r"\d+",
    kind="covariance|correlation",


def experiment(wildcards):
    """The config section of the experiment named by the wildcard."""
    return config["experiments"][wildcards.experiment]


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
