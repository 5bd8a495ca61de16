"""The key reference of config/README.md: generated, complete, and its types rendered right."""

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from losskernel.config_reference import (
    BEGIN_MARKER,
    END_MARKER,
    config_reference,
    describe_type,
    key_rows,
    main,
)
from losskernel.tasks import BUILTIN_TASKS, load_task

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = ROOT / "workflow/schemas/config.schema.yaml"
README = ROOT / "config/README.md"
ROW_KEY = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)


@pytest.fixture(scope="module")
def schema():
    return yaml.safe_load(SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def reference(schema):
    return config_reference(schema, {name: load_task(name) for name in BUILTIN_TASKS})


def sections(reference: str) -> dict[str, list[str]]:
    """The keys of each table, by the heading above it."""
    parts = re.split(r"^### (.+)$", reference, flags=re.MULTILINE)[1:]
    return {heading: ROW_KEY.findall(body)
            for heading, body in zip(parts[::2], parts[1::2], strict=True)}


def schema_keys(node, path: str) -> list[str]:
    """Every dotted key under a schema node, read off the YAML tree itself (no ``$ref`` is
    followed): ``properties`` name keys, ``additionalProperties`` stands for ``<name>`` and
    ``items`` for ``[]``."""
    keys = []
    if not isinstance(node, dict):
        return keys
    for key, child in node.get("properties", {}).items():
        keys.append(f"{path}.{key}".lstrip("."))
        keys += schema_keys(child, f"{path}.{key}")
    keys += schema_keys(node.get("additionalProperties"), f"{path}.<name>")
    keys += schema_keys(node.get("items"), f"{path}[]")
    return keys


def test_readme_holds_the_generated_reference(reference):
    text = README.read_text()
    assert text.count(BEGIN_MARKER) == 1 and text.count(END_MARKER) == 1, (
        f"config/README.md needs the marker lines {BEGIN_MARKER!r} and {END_MARKER!r}")
    pasted = text.split(BEGIN_MARKER)[1].split(END_MARKER)[0]
    assert pasted.strip() == reference.strip(), (
        "config/README.md's key reference is out of date with the schemas: run "
        "`python -m losskernel.config_reference` from the repository's root and paste its "
        "output between the marker lines")


def test_every_key_of_every_schema_is_in_the_reference(schema, reference):
    tables = sections(reference)
    generic = tables.pop("Top level and every experiment")
    experiment = schema["$defs"]["experiment"]
    generic_keys = [*schema_keys(schema, ""), *schema_keys(experiment, "experiments.<name>")]
    assert len(generic) == len(set(generic))
    assert set(generic) == set(generic_keys)
    assert set(tables) == {f"Task `{name}`" for name in BUILTIN_TASKS}
    for name in BUILTIN_TASKS:
        task_keys = schema_keys(load_task(name).SETTINGS_SCHEMA, "experiments.<name>")
        own = tables[f"Task `{name}`"]
        assert set(task_keys) <= set(own) | set(generic), name
        assert set(task_keys) - set(generic) <= set(own), name


def test_task_tables_show_the_merged_constraint():
    text = config_reference(SMALL, {"toy": SimpleNamespace(SETTINGS_SCHEMA=TOY_TASK)})
    toy = sections(text)["Task `toy`"]
    # added keys, a key made required, and a narrowed key; not the sections only descended
    assert toy == ["experiments.<name>.data", "experiments.<name>.data.size",
                   "experiments.<name>.training", "experiments.<name>.training.mode"]
    assert ("| `experiments.<name>.training.mode` | one of: fast | `fast` | how to train |"
            in text)
    assert "| `experiments.<name>.training` | object | required |  |" in text


SMALL = {
    "$defs": {
        "seed": {"type": "integer", "minimum": 0},
        "experiment": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "description": "what | it is, <name>"},
                "seed": {"$ref": "#/$defs/seed", "default": 0, "description": "a seed"},
                "rate": {"type": "number", "exclusiveMinimum": 0},
                "share": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                "data": {"type": "object"},
                "training": {
                    "type": "object",
                    "required": ["steps"],
                    "properties": {
                        "steps": {"oneOf": [{"type": "null"}, {"$ref": "#/$defs/seed"}]},
                        "mode": {"enum": ["fast", "slow"], "default": "fast",
                                 "description": "how to train"},
                    },
                },
            },
        },
    },
    "type": "object",
    "required": ["experiments"],
    "properties": {"experiments": {"type": "object", "minProperties": 1,
                                   "additionalProperties": {"$ref": "#/$defs/experiment"}}},
}
TOY_TASK = {
    "required": ["training"],
    "properties": {
        "data": {"type": "object", "required": ["size"],
                 "properties": {"size": {"type": "integer", "minimum": 1}}},
        "training": {"properties": {"mode": {"enum": ["fast"]}}},
    },
}


def test_types_defaults_and_requirement_of_a_small_schema():
    rows = {".".join(row.path): row[1:] for row in key_rows(SMALL, SMALL["$defs"])}
    assert rows == {
        "experiments": ("object (non-empty)", "required", ""),
        "experiments.<name>.name": ("string", "required", "what | it is, <name>"),
        "experiments.<name>.seed": ("integer ≥ 0", "`0`", "a seed"),
        "experiments.<name>.rate": ("number > 0", "optional", ""),
        "experiments.<name>.share": ("number in [0, 1)", "optional", ""),
        "experiments.<name>.data": ("object", "optional", ""),
        "experiments.<name>.training": ("object", "optional", ""),
        "experiments.<name>.training.steps": ("null or integer ≥ 0", "required", ""),
        "experiments.<name>.training.mode": ("one of: fast, slow", "`fast`", "how to train"),
    }
    table = config_reference(SMALL, {})
    assert "| `experiments.<name>.name` | string | required | what \\| it is, \\<name> |" in table


@pytest.mark.parametrize(("schema", "words"), [
    ({"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number",
                                                                "minimum": 0, "maximum": 1}},
     "array (2 items) of number in [0, 1]"),
    ({"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": [2, 3]}},
     "array (non-empty, distinct), each one of: 2, 3"),
    ({"type": "object", "propertyNames": {"enum": ["a", "b"]}}, "object (keys from: a, b)"),
    ({"const": "cnn", "type": "string"}, "always cnn"),
    ({"type": ["string", "null"]}, "string or null"),
    ({"type": "integer", "maximum": 9}, "integer ≤ 9"),
    ({}, "any"),
])
def test_describe_type(schema, words):
    assert describe_type(schema, {}) == words


def test_main_prints_the_reference_of_a_given_schema(reference, capsys):
    assert main(["--schema", str(SCHEMA_PATH)]) == 0
    assert capsys.readouterr().out == reference
    with pytest.raises(SystemExit):
        main(["--schema", str(ROOT / "no-such-schema.yaml")])
