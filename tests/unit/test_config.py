import copy
from pathlib import Path

import pytest

from losskernel.config import (
    ConfigError,
    load_config,
    model_source,
    resolve_experiments,
    validate_config,
)

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


def test_later_files_override_key_by_key_like_snakemake(tmp_path):
    (tmp_path / "a.yaml").write_text("a: {b: 1, c: 2}\nd: [1, 2]\n")
    (tmp_path / "b.yaml").write_text("a: {c: 3}\nd: [5]\n")
    assert load_config([tmp_path / "a.yaml", tmp_path / "b.yaml"]) == {"a": {"b": 1, "c": 3},
                                                                       "d": [5]}


def test_model_from_inherits_the_trained_model_settings(config):
    reuse = copy.deepcopy(config["experiments"]["modarith"])
    for key in ("task", "data", "model", "training"):
        del reuse[key]
    config["experiments"]["modarith-gamma"] = {**reuse, "model_from": "modarith"}
    validate_config(config, SCHEMA)
    resolved = resolve_experiments(config)["experiments"]["modarith-gamma"]
    assert resolved["model"] == config["experiments"]["modarith"]["model"]
    assert model_source(config, "modarith-gamma") == "modarith"
    assert model_source(config, "modarith") == "modarith"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_from": "nope"}, r"modarith-gamma\.model_from: 'nope' is not an experiment"),
        ({"model_from": "modarith", "data": "copied"}, r"modarith-gamma\.data: an experiment "
                                                        r"with model_from takes"),
    ],
)
def test_model_from_errors_are_named(config, change, message):
    reuse = {key: value for key, value in config["experiments"]["modarith"].items()
             if key not in ("task", "data", "model", "training")}
    if change.get("data") == "copied":
        change = {**change, "data": config["experiments"]["modarith"]["data"]}
    config["experiments"]["modarith-gamma"] = {**reuse, **change}
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA)


def test_an_experiment_without_model_from_must_say_how_to_train(config):
    del config["experiments"]["modarith"]["training"]
    with pytest.raises(ConfigError, match=r"experiments\.modarith: 'training' is a required"):
        validate_config(config, SCHEMA)


@pytest.mark.parametrize(
    ("experiment", "path", "value", "message"),
    [
        ("digits", ("analysis", "gamma_sweep", "attributes"), ["true_label", "hue"],
         r"digits\.analysis\.gamma_sweep\.attributes: \['hue'\] are not attributes"),
        ("digits", ("analysis", "gamma_sweep", "localizations"), [100],
         r"digits\.analysis\.gamma_sweep\.localizations: \[100\] is too short"),
        ("digits", ("data", "label_noise"), 0.0, r"digits\.data\.label_noise: the mislabel"),
        ("digits", ("analysis", "trajectory", "num_checkpoints"), 21,
         r"digits\.analysis\.trajectory\.num_checkpoints: 21 exceeds the 20 checkpoints"),
        ("digits", ("sampling", "stratify_by_task"), True,
         r"digits\.sampling\.stratify_by_task: False was expected"),
        ("modarith", ("analysis", "mislabels"), {"noise_scales": [0.1], "noise_draws": 2,
                                                "seed": 0, "eval_batch_size": 8},
         r"modarith\.analysis\.mislabels: the 'modular_arithmetic' task has no flipped labels"),
    ],
)
def test_appendix_analysis_settings_are_checked_before_anything_runs(config, experiment, path,
                                                                     value, message):
    section = config["experiments"][experiment]
    for key in path[:-1]:
        section = section[key]
    section[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA)


@pytest.fixture
def imagenet_config(tmp_path):
    """The default plus config/imagenet.yaml with an existing root and weights file."""
    (tmp_path / "train/n01440764").mkdir(parents=True)
    (tmp_path / "googlenet.pth").write_bytes(b"")
    config = load_config([DEFAULT, ROOT / "config/imagenet.yaml"])
    experiment = config["experiments"]["imagenet"]
    experiment["data"]["root"] = str(tmp_path / "train")
    experiment["model"]["weights"] = str(tmp_path / "googlenet.pth")
    return config


def test_the_imagenet_config_is_valid_once_root_and_weights_exist(imagenet_config):
    validate_config(imagenet_config, SCHEMA)


def test_imagenet_needs_the_wordnet_section(imagenet_config):
    del imagenet_config["wordnet"]
    with pytest.raises(ConfigError, match=r"invalid config key wordnet: experiment 'imagenet'"):
        validate_config(imagenet_config, SCHEMA)


def test_a_pretrained_trajectory_needs_enough_checkpoints(imagenet_config, tmp_path):
    experiment = imagenet_config["experiments"]["imagenet"]
    (tmp_path / "step0.pt").write_bytes(b"")
    experiment["model"]["checkpoints"] = [{"step": 0, "path": str(tmp_path / "step0.pt")}] * 2
    experiment["analysis"]["trajectory"] = {"num_checkpoints": 3, "seed": 0, "sampling": {}}
    with pytest.raises(ConfigError, match=r"trajectory\.num_checkpoints: 3 exceeds the 2 "):
        validate_config(imagenet_config, SCHEMA)
    experiment["analysis"]["trajectory"]["num_checkpoints"] = 2
    validate_config(imagenet_config, SCHEMA)


def test_mislabels_are_refused_for_imagenet(imagenet_config):
    analysis = imagenet_config["experiments"]["imagenet"]["analysis"]
    analysis["mislabels"] = {"noise_scales": [0.1], "noise_draws": 2, "seed": 0,
                             "eval_batch_size": 8}
    with pytest.raises(ConfigError, match="has no flipped labels"):
        validate_config(imagenet_config, SCHEMA)
