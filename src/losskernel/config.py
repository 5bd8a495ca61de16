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
                    source: str = "the config file") -> None:
    """Raise ``ConfigError`` for the first schema violation or failed semantic check."""
    schema = load_yaml(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.path), list(e.path)))
    if errors:
        error = errors[0]
        more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
        raise ConfigError(
            f"invalid config key {_key(error.path)}: {error.message}. Fix it in {source}; "
            f"allowed values are described in {schema_path}.{more}"
        )
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
    for name, settings in resolve_experiments(config)["experiments"].items():
        check_experiment(name, settings)


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


def check_experiment(name: str, settings: Mapping) -> None:
    """The checks of one experiment that the schema cannot express."""
    prefix = f"experiments.{name}"
    sampling, analysis = settings["sampling"], settings["analysis"]
    if analysis["figure_seed"] not in sampling["seeds"]:
        raise ConfigError(f"invalid config key {prefix}.analysis.figure_seed: "
                          f"{analysis['figure_seed']} is not one of sampling.seeds "
                          f"{sampling['seeds']}")
    if analysis["standard_error_batches"] > sampling["num_draws"]:
        raise ConfigError(f"invalid config key {prefix}.analysis.standard_error_batches: "
                          f"{analysis['standard_error_batches']} blocks need at least as many "
                          f"draws (sampling.num_draws = {sampling['num_draws']})")
    try:
        get_task(settings["task"]).check_settings(settings)
    except ValueError as error:
        raise ConfigError(f"invalid config key {prefix}.{error}") from None
    per_task = settings["kernel_inputs"]["per_task"]
    if analysis["knn_k"] >= 2 * per_task:
        raise ConfigError(f"invalid config key {prefix}.analysis.knn_k: {analysis['knn_k']} "
                          f"must be smaller than the {2 * per_task} kernel inputs")


def quoted_settings(config: Mapping) -> dict[str, dict[str, object]]:
    """The settings the paper's text quotes, per experiment (they become LaTeX macros)."""
    return {
        name: {
            "modulus": settings["data"]["modulus"],
            "per_task": settings["kernel_inputs"]["per_task"],
            "num_seeds": len(settings["sampling"]["seeds"]),
            "num_chains": settings["sampling"]["num_chains"],
            "num_draws": settings["sampling"]["num_draws"],
            "localization": settings["sampling"]["localization"],
            "nbeta": settings["sampling"]["nbeta"],
            "step_size": settings["sampling"]["step_size"],
            "knn_k": settings["analysis"]["knn_k"],
        }
        for name, settings in resolve_experiments(config)["experiments"].items()
    }
