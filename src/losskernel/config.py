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


def merge_configs(base: Mapping, override: Mapping) -> dict:
    """``override`` laid over ``base`` key by key, recursing into dicts (Snakemake's rule)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_configs(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(paths: Sequence[str | os.PathLike]) -> dict:
    """Config files merged in order, as ``snakemake --configfile A B`` does."""
    config: dict = {}
    for path in paths:
        config = merge_configs(config, load_yaml(path))
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
    for name, settings in config["experiments"].items():
        check_experiment(name, settings)


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
        for name, settings in config["experiments"].items()
    }
