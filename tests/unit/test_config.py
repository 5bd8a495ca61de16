import copy
from pathlib import Path

import pytest

from losskernel.config import ConfigError, load_config, merge_configs, validate_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
DEFAULT = ROOT / "config/config.yaml"


@pytest.fixture
def config():
    return load_config([DEFAULT])


def test_default_and_sweep_configs_are_valid(config):
    validate_config(config, SCHEMA)
    for sweep in sorted((ROOT / "config/sweeps").glob("*.yaml")):
        validate_config(load_config([DEFAULT, sweep]), SCHEMA)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("sampling", "localization"), -1,
         r"experiments\.modarith\.sampling\.localization: -1 is less than the minimum of 0"),
        (("sampling", "step_size"), "fast",
         r"experiments\.modarith\.sampling\.step_size: 'fast' is not of type 'number'"),
        (("sampling", "nbeta"), None, r"experiments\.modarith\.sampling\.nbeta"),
        (("data", "modulus"), 51, r"experiments\.modarith\.data\.modulus: 51 is not prime"),
        (("analysis", "figure_seed"), 9, r"experiments\.modarith\.analysis\.figure_seed"),
        (("kernel_inputs", "per_task"), 5000, r"experiments\.modarith\.kernel_inputs\.per_task"),
    ],
)
def test_bad_values_are_named(config, path, value, message):
    bad = copy.deepcopy(config)
    bad["experiments"]["modarith"][path[0]][path[1]] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(bad, SCHEMA)


def test_unknown_key_is_named(config):
    bad = copy.deepcopy(config)
    bad["experiments"]["modarith"]["sampling"]["num_chians"] = 4
    with pytest.raises(ConfigError, match=r"sampling: Additional properties are not allowed "
                                          r"\('num_chians' was unexpected\)"):
        validate_config(bad, SCHEMA)


def test_merge_overrides_key_by_key():
    base = {"a": {"b": 1, "c": 2}, "d": [1, 2]}
    assert merge_configs(base, {"a": {"c": 3}, "d": [5]}) == {"a": {"b": 1, "c": 3}, "d": [5]}
    assert base == {"a": {"b": 1, "c": 2}, "d": [1, 2]}
