"""Validation of a workflow configuration before anything runs.

Two layers: the JSON schema (types, ranges, unknown keys) and checks the schema cannot express
(seeds that exist, enough draws, and each task module's own ``check_settings``). Both raise
``ConfigError`` with the dotted key and a fix, so a bad value fails in seconds, not after training.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import jsonschema
import yaml

from losskernel.experiments import get_task


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


def _key(path) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def load_yaml(path: str | os.PathLike) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def update_config(config: dict, override: Mapping) -> dict:
    """Lay ``override`` over ``config`` in place, key by key, recursing into dicts.

    The same rule as ``snakemake --configfile A B``, including its in-place update: sections
    shared through YAML anchors are one object, so an override of one applies to all of them.
    """
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            update_config(config[key], value)
        else:
            config[key] = value
    return config


def load_config(paths: Sequence[str | os.PathLike]) -> dict:
    """Config files merged in order, as ``snakemake --configfile A B`` does."""
    config: dict = {}
    for path in paths:
        update_config(config, load_yaml(path))
    return config


def validate_config(config: Mapping, schema_path: str | os.PathLike,
                    source: str = "the config file", check_files: bool = True) -> None:
    """Raise ``ConfigError`` for the first schema violation or failed semantic check.

    The schema is checked twice: on the config as given, then with every ``model_from``
    experiment completed by its source, when its task (and so its task's rules) is known.
    ``check_files=False`` skips the checks that named files exist (ImageNet's data and
    weights), for planning a run on a machine that does not have them.
    """
    validator = jsonschema.Draft202012Validator(load_yaml(schema_path))

    def check_schema(candidate: Mapping) -> None:
        errors = sorted(validator.iter_errors(candidate),
                        key=lambda e: (len(e.path), list(e.path)))
        if errors:
            error = errors[0]
            more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
            raise ConfigError(
                f"invalid config key {_key(error.path)}: {error.message}. Fix it in {source}; "
                f"allowed values are described in {schema_path}.{more}"
            )

    check_schema(config)
    experiments = config["experiments"]
    for name, settings in experiments.items():
        source = settings.get("model_from")
        if source is None:
            continue
        inherited = [key for key in TRAINING_SECTIONS if key in settings]
        if inherited:
            raise ConfigError(f"invalid config key experiments.{name}.{inherited[0]}: an "
                              f"experiment with model_from takes {', '.join(TRAINING_SECTIONS)} "
                              f"from experiment {source!r}; remove it here")
        if source not in experiments:
            raise ConfigError(f"invalid config key experiments.{name}.model_from: {source!r} is "
                              f"not an experiment; choose from {sorted(experiments)}")
        if "model_from" in experiments[source]:
            raise ConfigError(f"invalid config key experiments.{name}.model_from: {source!r} "
                              f"itself reuses another model; point to the one that trains")
    resolved = resolve_experiments(config)
    check_schema(resolved)
    imagenet = [name for name, settings in resolved["experiments"].items()
                if settings["task"] == "imagenet"]
    if imagenet and "wordnet" not in config:
        raise ConfigError(f"invalid config key wordnet: experiment {imagenet[0]!r} needs WordNet; "
                          f"add the wordnet section of config/imagenet.yaml (nltk_data, "
                          f"debian_dir) to {source}")
    for name, settings in resolved["experiments"].items():
        check_experiment(name, settings, check_files)


TRAINING_SECTIONS = ("task", "data", "model", "training")


def resolve_experiments(config: Mapping) -> dict:
    """The config with every ``model_from`` experiment completed by its source's task, data,
    model and training sections (the input is not modified)."""
    experiments = {}
    for name, settings in config["experiments"].items():
        source = settings.get("model_from")
        inherited = ({key: config["experiments"][source][key] for key in TRAINING_SECTIONS}
                     if source else {})
        experiments[name] = {**inherited, **settings}
    return {**config, "experiments": experiments}


def model_source(config: Mapping, experiment: str) -> str:
    """The experiment whose trained model ``experiment`` samples around (itself by default)."""
    return config["experiments"][experiment].get("model_from", experiment)


MISLABEL_BASELINES: tuple[str, ...] = (
    "posterior_mean_loss", "loss_at_optimum", "noise_variance_best", "noise_mean_best",
    "history_loss_mean", "history_loss_variance")
"""The mislabel scores reported beside K(z, z) (see ``losskernel.analyses.mislabels``)."""
SEED_READINGS: dict[str, tuple[str, ...]] = {
    # per-seed metric tables and the metrics they hold
    "separation": ("roc_auc", "roc_auc_all_edges", "roc_auc_shared_token", "roc_auc_pairwise",
                   "within_task_mean_R", "cross_task_mean_R", "cross_task_z"),
    "mislabels": ("mislabel_roc_auc", "self_cov_mislabeled", "self_cov_normal",
                  "self_cov_ratio", *(f"baseline_roc_auc_{score}" for score in MISLABEL_BASELINES)),
    "convergence": ("cka_half", "cka_halves", "cka_chain_halves"),
    "taxonomy": ("hierarchy_lift", "edge_lca_depth", "chance_lca_depth"),
}
EXPERIMENT_READINGS: dict[str, tuple[str, ...]] = {"trajectory": ("trajectory_gain",)}


def seed_readings(settings: Mapping) -> list[str]:
    """The per-seed readings an experiment produces: task separation (modular arithmetic),
    the WordNet taxonomy (ImageNet), mislabels and convergence (when configured)."""
    analysis = settings["analysis"]
    readings = {"modular_arithmetic": ["separation"], "imagenet": ["taxonomy"]}.get(
        settings["task"], [])
    return readings + [name for name in ("mislabels", "convergence") if name in analysis]


def experiment_readings(settings: Mapping) -> list[str]:
    """Readings with one value per experiment (the developmental trajectory)."""
    return [name for name in EXPERIMENT_READINGS if name in settings["analysis"]]


def check_experiment(name: str, settings: Mapping, check_files: bool = True) -> None:
    """The checks of one experiment that the schema cannot express."""
    prefix = f"experiments.{name}"
    sampling, analysis = settings["sampling"], settings["analysis"]
    if analysis["figure_seed"] not in sampling["seeds"]:
        raise ConfigError(f"invalid config key {prefix}.analysis.figure_seed: "
                          f"{analysis['figure_seed']} is not one of sampling.seeds "
                          f"{sampling['seeds']}")
    if "standard_error_batches" in analysis and (
            analysis["standard_error_batches"] > sampling["num_draws"]):
        raise ConfigError(f"invalid config key {prefix}.analysis.standard_error_batches: "
                          f"{analysis['standard_error_batches']} blocks need at least as many "
                          f"draws (sampling.num_draws = {sampling['num_draws']})")
    module = get_task(settings["task"])
    try:
        module.check_settings(settings)
        if check_files and hasattr(module, "check_files"):
            module.check_files(settings)
    except ValueError as error:
        raise ConfigError(f"invalid config key {prefix}.{error}") from None
    trajectory = analysis.get("trajectory")
    available = (module.available_checkpoints(settings)
                 if hasattr(module, "available_checkpoints")
                 else settings["training"]["num_checkpoints"])
    if trajectory and trajectory["num_checkpoints"] > available:
        raise ConfigError(f"invalid config key {prefix}.analysis.trajectory.num_checkpoints: "
                          f"{trajectory['num_checkpoints']} exceeds the {available} checkpoints "
                          f"the model has (training.num_checkpoints, or the list "
                          f"model.checkpoints of a pretrained model); lower it")
    produced = {metric for reading in seed_readings(settings) for metric in SEED_READINGS[reading]}
    produced |= {metric for reading in experiment_readings(settings)
                 for metric in EXPERIMENT_READINGS[reading]}
    for metric in settings["headline_metrics"]:
        if metric not in produced:
            raise ConfigError(f"invalid config key {prefix}.headline_metrics: {metric!r} needs an "
                              f"analysis this experiment does not run; it can report "
                              f"{sorted(produced)}")
    attributes = module.INPUT_ATTRIBUTES
    sweep = analysis.get("gamma_sweep")
    unknown = [name for name in (sweep or {}).get("attributes", []) if name not in attributes]
    if unknown:
        raise ConfigError(f"invalid config key {prefix}.analysis.gamma_sweep.attributes: "
                          f"{unknown} are not attributes of the {settings['task']!r} inputs; "
                          f"choose from {list(attributes)}")
    if "mislabels" in analysis and "mislabeled" not in attributes:
        raise ConfigError(f"invalid config key {prefix}.analysis.mislabels: the "
                          f"{settings['task']!r} task has no flipped labels to detect; remove it")
    if "per_task" in settings["kernel_inputs"] and "knn_k" in analysis:
        per_task = settings["kernel_inputs"]["per_task"]
        if analysis["knn_k"] >= 2 * per_task:
            raise ConfigError(f"invalid config key {prefix}.analysis.knn_k: {analysis['knn_k']} "
                              f"must be smaller than the {2 * per_task} kernel inputs")


def quoted_settings(config: Mapping) -> dict[str, dict[str, object]]:
    """The settings the paper's text quotes, per experiment (they become LaTeX macros)."""
    quoted = {}
    for name, settings in resolve_experiments(config)["experiments"].items():
        sampling, analysis = settings["sampling"], settings["analysis"]
        values = {
            "num_seeds": len(sampling["seeds"]),
            **{key: sampling[key] for key in ("num_chains", "num_draws", "localization",
                                              "nbeta", "step_size")},
            "per_task": settings["kernel_inputs"].get("per_task"),
            "images_per_class": settings["kernel_inputs"].get("images_per_class"),
            "image_size": settings["data"].get("image_size"),
            "modulus": settings["data"].get("modulus"),
            "label_noise": settings["data"].get("label_noise"),
            "knn_k": analysis.get("knn_k"),
        }
        if "gamma_sweep" in analysis:
            gammas = analysis["gamma_sweep"]["localizations"]
            values.update(gamma_min=min(gammas), gamma_max=max(gammas))
        if "trajectory" in analysis:
            values["num_trajectory_checkpoints"] = analysis["trajectory"]["num_checkpoints"]
        quoted[name] = {key: value for key, value in values.items() if value is not None}
    return quoted
