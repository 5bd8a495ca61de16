"""The workflow's configuration: files, variants, the schema and its defaults.

A config is read in four steps, each done in one place:

1. :func:`load_config`: the YAML files merged in order, key by key (``snakemake --configfile
   A B`` does the same);
2. :func:`resolve_variants`: an experiment with ``based_on: X`` is experiment X with its own
   keys laid over X's (``key: null`` drops an inherited key); one with ``model_from: X``
   samples around X's trained model and takes X's task, data, model and training sections;
3. :func:`fill_defaults`: every key the schema gives a ``default`` and the config leaves out;
4. :func:`validate_schema`: the JSON schema ``workflow/schemas/config.schema.yaml``, whose
   experiment schema each experiment's task extends with its ``SETTINGS_SCHEMA``.

:func:`read_config` does all four (the defaults are valid values, so the schema checks the
config as the jobs will see it), after refusing NaN and ±inf at any key
(:func:`refuse_non_finite`). Errors are ``ConfigError`` naming the dotted key and the
fix, raised before anything runs. Checks across keys (the figure seed among the seeds, enough
checkpoints, files that exist) belong to :class:`losskernel.plan.Plan`.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema
import yaml

from losskernel.tasks import load_task
from losskernel.tasks.protocol import Task


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


TRAINING_SECTIONS = ("task", "data", "model", "training")
"""The sections an experiment with ``model_from`` takes from the experiment that trains."""


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


def read_config(config: Mapping, schema_path: str | os.PathLike,
                source: str = "the config file") -> dict:
    """The config resolved (variants), completed with defaults and validated; the input is not
    modified. ``source`` names the files in error messages."""
    if not isinstance(config.get("experiments"), Mapping) or not config["experiments"]:
        raise ConfigError(f"invalid config key experiments: it must name at least one "
                          f"experiment. Fix it in {source}")
    refuse_non_finite(config, source)
    schema = load_yaml(schema_path)
    filled = fill_defaults(resolve_variants(config), schema)
    validate_schema(filled, schema, f"{source}; allowed values are described in {schema_path}")
    return filled


def refuse_non_finite(config: Any, source: str, path: tuple[str | int, ...] = ()) -> None:
    """Raise ``ConfigError`` naming the first key (in file order) whose value is NaN or ±inf.

    YAML reads ``.nan`` and ``.inf`` as floats, and JSON schema's ``minimum`` and
    ``exclusiveMinimum`` let NaN through (every comparison with NaN is false), so without this
    a NaN step size would pass the dry run and fail only at sampling time, after training. No
    setting of the workflow means anything with a non-finite value, so every key is checked,
    those of a user's task schema too.
    """
    if isinstance(config, Mapping):
        for key, value in config.items():
            refuse_non_finite(value, source, (*path, key))
    elif isinstance(config, list | tuple):
        for index, value in enumerate(config):
            refuse_non_finite(value, source, (*path, index))
    elif isinstance(config, float) and not math.isfinite(config):
        raise ConfigError(f"invalid config key {dotted_key(path)}: {config} is not a finite number "
                          f"(YAML reads .nan and .inf as numbers); write a finite value. "
                          f"Fix it in {source}.")


def dotted_key(path: Sequence[str | int]) -> str:
    """A key's place in the config as error messages name it: ``experiments.x.seeds.1``."""
    return ".".join(str(part) for part in path) or "(top level)"


def lay_over(base: Mapping, variant: Mapping) -> dict:
    """``variant``'s keys over a copy of ``base``, recursing into mappings; ``None`` drops the
    key (so a variant can leave out an analysis its base runs)."""
    merged = copy.deepcopy(dict(base))
    for key, value in variant.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = lay_over(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_variants(config: Mapping) -> dict:
    """The config with every ``based_on`` experiment completed by its base and every
    ``model_from`` experiment by its source's training sections (the input is not modified).
    An experiment set to null (``experiments: {fashion: null}`` in an override file) is left
    out."""
    experiments = {name: settings for name, settings in config["experiments"].items()
                   if settings is not None}
    resolved: dict[str, dict] = {}

    def resolve(name: str, path: tuple[str, ...]) -> dict:
        if name not in resolved:
            settings = dict(experiments[name])
            base = settings.pop("based_on", None)
            if base is not None:
                _check_reference(name, "based_on", base, experiments, path)
                settings = lay_over(resolve(base, (*path, name)), settings)
            resolved[name] = settings
        return resolved[name]

    for name in experiments:
        resolve(name, ())
    for name, settings in resolved.items():
        source = settings.get("model_from")
        if source is None:
            continue
        _check_reference(name, "model_from", source, experiments, ())
        own = [key for key in TRAINING_SECTIONS if key in experiments[name]]
        if own:
            raise ConfigError(f"invalid config key experiments.{name}.{own[0]}: an experiment "
                              f"with model_from takes {', '.join(TRAINING_SECTIONS)} from "
                              f"experiment {source!r}; remove it here")
        if "model_from" in experiments[source]:
            raise ConfigError(f"invalid config key experiments.{name}.model_from: {source!r} "
                              f"itself reuses another model; point to the one that trains")
        settings.update({key: copy.deepcopy(resolved[source][key])
                         for key in TRAINING_SECTIONS if key in resolved[source]})
    return {**config, "experiments": resolved}


def _check_reference(name: str, key: str, target: object, experiments: Mapping,
                     path: tuple[str, ...]) -> None:
    if target not in experiments:
        raise ConfigError(f"invalid config key experiments.{name}.{key}: {target!r} is not an "
                          f"experiment; choose from {sorted(experiments)}")
    if target in path or target == name:
        cycle = " -> ".join((*path, name, str(target)))
        raise ConfigError(f"invalid config key experiments.{name}.{key}: the experiments are "
                          f"based on each other in a circle ({cycle}); break it")


def validate_schema(config: Mapping, schema: Mapping, where: str) -> None:
    """Raise ``ConfigError`` for the first schema violation: first of the top level (each
    experiment only needs a ``task``), then of each experiment under its task's schema."""
    top = copy.deepcopy(dict(schema))
    top["properties"]["experiments"]["additionalProperties"] = {
        "type": "object", "required": ["task"], "properties": {"task": {"type": "string"}}}
    _raise_first(jsonschema.Draft202012Validator(top).iter_errors(config), (), where)
    for name, settings in config["experiments"].items():
        validator = jsonschema.Draft202012Validator(
            experiment_schema(schema, task_of(name, settings)))
        _raise_first(validator.iter_errors(settings), ("experiments", name),
                     f"{where} and the task's SETTINGS_SCHEMA ({settings['task']})")


def experiment_schema(schema: Mapping, task: Task) -> dict:
    """The workflow's experiment schema extended by the task's ``SETTINGS_SCHEMA``, with the
    workflow's ``$defs`` (which the task schema may refer to)."""
    return {"$defs": schema["$defs"],
            **merge_schemas(schema["$defs"]["experiment"], task.SETTINGS_SCHEMA)}


def merge_schemas(base: Mapping, extension: Mapping) -> dict:
    """``extension`` laid over ``base``: mappings merge key by key, ``required`` lists are
    joined, anything else is replaced."""
    merged = dict(base)
    for key, value in extension.items():
        if key == "required":
            merged[key] = [*base.get(key, []), *(v for v in value if v not in base.get(key, []))]
        elif isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            merged[key] = merge_schemas(base[key], value)
        else:
            merged[key] = value
    return merged


def _raise_first(errors, prefix: tuple[str, ...], where: str) -> None:
    errors = sorted(errors, key=lambda e: (len(e.path), [str(p) for p in e.path]))
    if errors:
        error = errors[0]
        key = dotted_key((*prefix, *error.path))
        more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
        raise ConfigError(f"invalid config key {key}: {error.message}.{_hint(error)} "
                          f"Fix it in {where}.{more}")


def _hint(error: jsonschema.ValidationError) -> str:
    """The likely fix of a schema violation, as a sentence, when there is one: the key an
    unknown key is a typo of, or how to write a number YAML read as a string (YAML 1.1 needs a
    decimal point in ``1.0e-3``)."""
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = list(error.schema.get("properties", {}))
        guesses = {key: difflib.get_close_matches(str(key), known, n=1)
                   for key in error.instance if key not in known}
        fixes = [f"{found[0]!r} (not {key!r})" for key, found in guesses.items() if found]
        return (f" Did you mean {', '.join(fixes)}?" if fixes
                else f" The keys allowed here are {', '.join(known)}.")
    if error.validator in ("oneOf", "anyOf") and error.context:
        # the value against each allowed form: "'all' was expected; 0 is less than the minimum"
        reasons = dict.fromkeys(reason.message for reason in error.context)
        return f" Each allowed form refuses it: {'; '.join(reasons)}."
    if error.validator != "type" or not isinstance(error.instance, str):
        return ""
    text = error.instance.strip()
    try:
        number = float(text)
    except ValueError:
        return ""
    if re.fullmatch(r"[-+]?[0-9]+[eE][-+]?[0-9]+", text):
        mantissa, exponent = re.split("[eE]", text)
        written = (f"{number:.0f}" if error.validator_value == "integer" and number.is_integer()
                   else f"{mantissa}.0e{exponent if exponent[0] in '+-' else '+' + exponent}")
        return f" YAML reads {text} as a string: write {written}."
    return f" It is quoted: write {text} without quotes."


def fill_defaults(config: Mapping, schema: Mapping) -> dict:
    """A copy of ``config`` with every ``default`` of the schema (and of each experiment's task
    schema) where the config leaves the key out."""
    filled = copy.deepcopy(dict(config))
    _fill(filled, schema, schema["$defs"])
    for name, settings in filled["experiments"].items():
        if isinstance(settings, dict):
            _fill(settings, experiment_schema(schema, task_of(name, settings)), schema["$defs"])
    for sweep in filled.get("sweeps", {}).values():  # entries of a mapping: _fill skips them
        _fill(sweep, schema["properties"]["sweeps"]["additionalProperties"], schema["$defs"])
    return filled


def task_of(name: str, settings: Mapping) -> Task:
    """The task module of an experiment; ``ConfigError`` names a missing or unknown task."""
    task = settings.get("task")
    if not isinstance(task, str):
        raise ConfigError(f"invalid config key experiments.{name}.task: "
                          f"{'is not set' if task is None else f'{task!r} is not a string'}; "
                          f"name a built-in task or your module by import path")
    try:
        return load_task(task)
    except ValueError as error:
        raise ConfigError(f"invalid config key experiments.{name}.task: {error}") from None


def _fill(instance: Any, schema: Mapping, definitions: Mapping) -> None:
    schema = resolve_reference(schema, definitions)
    if not isinstance(instance, dict):
        return
    properties = schema.get("properties", {})
    for key, subschema in properties.items():
        subschema = resolve_reference(subschema, definitions)
        if key not in instance and "default" in subschema:
            instance[key] = copy.deepcopy(subschema["default"])
        if key in instance:
            _fill(instance[key], subschema, definitions)


def resolve_reference(schema: Mapping, definitions: Mapping) -> Mapping:
    """``schema`` with its ``$ref`` (``#/$defs/<name>``) replaced by the definition, resolved in
    turn, with the referring schema's own keys (a default, a description) laid over it."""
    reference = schema.get("$ref")
    if reference is None:
        return schema
    target = resolve_reference(definitions[reference.removeprefix("#/$defs/")], definitions)
    return {**target, **{key: value for key, value in schema.items() if key != "$ref"}}
