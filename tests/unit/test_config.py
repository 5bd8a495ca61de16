"""Reading a config: files merged, variants resolved, the schema checked, defaults filled, and
the checks across keys, each failing before anything runs with the key named."""

import copy
from pathlib import Path

import pytest
import yaml

from losskernel.config import (
    ConfigError,
    experiment_schema,
    lay_over,
    load_config,
    load_yaml,
    read_config,
    resolve_variants,
)
from losskernel.plan import Plan
from losskernel.tasks import BUILTIN_TASKS, load_task

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
DEFAULT = ROOT / "config/config.yaml"


@pytest.fixture
def config():
    return load_config([DEFAULT])


def plan_of(config) -> Plan:
    return Plan.from_config(config, SCHEMA, check_files=False)  # the files are not the point


def test_default_and_sweep_configs_plan_every_experiment_they_name(config):
    assert list(plan_of(config).experiments) == list(config["experiments"])
    sweeps = sorted((ROOT / "config/sweeps").glob("*.yaml"))
    assert sweeps, "config/sweeps/ holds no sweep"
    for sweep in sweeps:
        added = yaml.safe_load(sweep.read_text())["experiments"]
        merged = load_config([DEFAULT, sweep])
        assert list(plan_of(merged).experiments) == [*config["experiments"], *added]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("sampling", "localization"), -1,
         r"experiments\.modarith\.sampling\.localization: -1 is less than the minimum of 0"),
        (("sampling", "step_size"), "fast",
         r"experiments\.modarith\.sampling\.step_size: 'fast' is not of type 'number'"),
        (("sampling", "nbeta"), "", r"experiments\.modarith\.sampling\.nbeta"),
        (("data", "modulus"), 51, r"experiments\.modarith\.data\.modulus: 51 is not prime"),
        (("analysis", "figure_seed"), 9, r"experiments\.modarith\.analysis\.figure_seed"),
        (("kernel_inputs", "per_task"), 5000, r"experiments\.modarith\.kernel_inputs\.per_task"),
        (("analysis", "knn_k"), 1000, r"experiments\.modarith\.analysis\.knn_k: 1000 must be "
                                      r"smaller than the 1000 kernel inputs"),
        (("analysis", "diagnostics"), {"max_rhat": 0.99},
         r"experiments\.modarith\.analysis\.diagnostics\.max_rhat: 0\.99 is less than or equal "
         r"to the minimum of 1"),
        (("analysis", "calibration"), {"num_chains": 1},
         r"experiments\.modarith\.analysis\.calibration\.num_chains: 1 is less than"),
        (("analysis", "calibration"), {"nbetas": [0, 30]},
         r"experiments\.modarith\.analysis\.calibration\.nbetas"),
        (("analysis", "diagnostics"), {"batches": 2000},
         r"experiments\.modarith\.analysis\.diagnostics\.batches: 2000 blocks of the draws "
         r"leave fewer than 2 samples per block \(or fewer than 4 draws\) in runs \['seed0',"),
    ],
)
def test_bad_values_are_named(config, path, value, message):
    config["experiments"]["modarith"][path[0]][path[1]] = value
    with pytest.raises(ConfigError, match=message):
        plan_of(config)


def test_unknown_key_is_named(config):
    config["experiments"]["modarith"]["sampling"]["num_chians"] = 4
    with pytest.raises(ConfigError, match=r"sampling: Additional properties are not allowed "
                                          r"\('num_chians' was unexpected\)"):
        plan_of(config)


def test_an_unknown_task_names_the_built_in_ones(config):
    config["experiments"]["digits"]["task"] = "mnist"
    with pytest.raises(ConfigError, match=r"experiments\.digits\.task: unknown task 'mnist': "
                                          r"not a built-in task \(modular_arithmetic, digits, "
                                          r"imagenet, fashion\) and mnist cannot be imported"):
        plan_of(config)


def test_later_files_override_key_by_key_like_snakemake(tmp_path):
    (tmp_path / "a.yaml").write_text("a: {b: 1, c: 2}\nd: [1, 2]\n")
    (tmp_path / "b.yaml").write_text("a: {c: 3}\nd: [5]\n")
    assert load_config([tmp_path / "a.yaml", tmp_path / "b.yaml"]) == {"a": {"b": 1, "c": 3},
                                                                       "d": [5]}


def test_defaults_are_filled_from_the_schemas(config):
    digits = read_config(config, SCHEMA)["experiments"]["digits"]
    assert digits["kernel_inputs"] == {"split": "train"}  # the task schema's default
    assert digits["model"]["architecture"] == "cnn"
    assert digits["sampling"]["device"] == "cpu" and digits["sampling"]["eval_precision"] == (
        "float32")
    assert digits["analysis"]["umap"]["dimensions"] == [2]
    assert digits["training"]["batch_size"] == 64  # given: kept
    assert read_config(config, SCHEMA)["wordnet"] == {"nltk_data": "results/wordnet/nltk_data",
                                                      "debian_dir": "/usr/share/wordnet"}
    assert "device" not in config["experiments"]["digits"]["sampling"]  # the input is untouched


def test_a_variant_is_its_base_with_its_keys_laid_over(config):
    experiments = read_config(config, SCHEMA)["experiments"]
    control, base = experiments["modarith-control"], experiments["modarith"]
    expected = copy.deepcopy(base)
    expected["model"]["disjoint_by_task"] = True
    expected["sampling"]["num_chains"] = 2
    expected["sampling"]["num_draws"] = 500
    del expected["analysis"]["trajectory"]  # `trajectory: null` leaves it out
    expected["analysis"]["checks"]["positive_control"] = True
    expected["headline_metrics"] = ["cross_task_z"]
    assert control == expected


def test_lay_over_recurses_replaces_lists_and_drops_nulls():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 2, "e": {"f": 3}}
    assert lay_over(base, {"a": {"c": [3]}, "d": None, "e": {"g": 4}}) == {
        "a": {"b": 1, "c": [3]}, "e": {"f": 3, "g": 4}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 2, "e": {"f": 3}}  # not modified


def test_variants_of_variants_and_their_errors(config):
    experiments = config["experiments"]
    experiments["control-p59"] = {"based_on": "modarith-control", "data": {"modulus": 59}}
    resolved = resolve_variants(config)["experiments"]["control-p59"]
    assert resolved["model"]["disjoint_by_task"] and resolved["data"]["modulus"] == 59
    experiments["loop-a"] = {"based_on": "loop-b"}
    experiments["loop-b"] = {"based_on": "loop-a"}
    with pytest.raises(ConfigError, match=r"based on each other in a circle"):
        resolve_variants(config)
    del experiments["loop-a"], experiments["loop-b"]
    experiments["orphan"] = {"based_on": "nope"}
    with pytest.raises(ConfigError, match=r"orphan\.based_on: 'nope' is not an experiment"):
        resolve_variants(config)


def test_model_from_inherits_the_trained_model_settings(config):
    reuse = {key: value for key, value in config["experiments"]["modarith"].items()
             if key not in ("task", "data", "model", "training")}
    config["experiments"]["modarith-gamma"] = {**reuse, "model_from": "modarith"}
    plan = plan_of(config)
    gamma, modarith = plan.experiment("modarith-gamma"), plan.experiment("modarith")
    assert gamma.settings["model"] == modarith.settings["model"]
    assert gamma.model_source == "modarith" and modarith.model_source == "modarith"
    assert "modarith-gamma" not in plan.trained


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
        plan_of(config)


def test_an_experiment_that_trains_must_say_how(config):
    del config["experiments"]["modarith"]["training"]
    with pytest.raises(ConfigError, match=r"experiments\.modarith: 'training' is a required"):
        plan_of(config)


@pytest.mark.parametrize(
    ("experiment", "path", "value", "message"),
    [
        ("digits", ("analysis", "gamma_sweep", "attributes"), ["true_label", "hue"],
         r"digits\.analysis\.gamma_sweep\.attributes: \['hue'\] are not attributes"),
        ("digits", ("analysis", "gamma_sweep", "localizations"), [100],
         r"digits\.analysis\.gamma_sweep\.localizations: \[100\] is too short"),
        ("digits", ("data", "label_noise"), 0.0, r"digits\.data\.label_noise: the mislabel"),
        ("digits", ("analysis", "trajectory", "num_checkpoints"), 20,
         r"digits\.analysis\.trajectory\.num_checkpoints: 20 exceeds the 19 checkpoints"),
        ("digits", ("sampling", "stratify_by_task"), True,
         r"digits\.sampling\.stratify_by_task: False was expected"),
        ("digits", ("headline_metrics",), ["roc_auc"],
         r"digits\.headline_metrics: \['roc_auc'\] need an analysis this experiment does not"),
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
        plan_of(config)


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
    plan = plan_of(imagenet_config)
    assert plan.pretrained == ["imagenet"]
    assert plan.experiment("imagenet").pretrained.weights.endswith("googlenet.pth")


def test_a_missing_root_is_named_unless_planning(imagenet_config):
    imagenet_config["experiments"]["imagenet"]["data"]["root"] = None
    with pytest.raises(ConfigError, match=r"experiments\.imagenet\.data\.root: is not set"):
        Plan.from_config(imagenet_config, SCHEMA)
    Plan.from_config(imagenet_config, SCHEMA, check_files=False)  # sizing jobs needs no data


def test_a_pretrained_trajectory_needs_enough_checkpoints(imagenet_config, tmp_path):
    experiment = imagenet_config["experiments"]["imagenet"]
    (tmp_path / "step0.pt").write_bytes(b"")
    experiment["model"]["checkpoints"] = [{"step": 0, "path": str(tmp_path / "step0.pt")}] * 2
    experiment["analysis"]["trajectory"] = {"num_checkpoints": 3, "seed": 0, "sampling": {}}
    with pytest.raises(ConfigError, match=r"trajectory\.num_checkpoints: 3 exceeds the 2 "):
        plan_of(imagenet_config)
    experiment["analysis"]["trajectory"]["num_checkpoints"] = 2
    plan_of(imagenet_config)


def test_mislabels_are_refused_for_imagenet(imagenet_config):
    analysis = imagenet_config["experiments"]["imagenet"]["analysis"]
    analysis["mislabels"] = {"noise_scales": [0.1], "noise_draws": 2, "seed": 0,
                             "eval_batch_size": 8}
    with pytest.raises(ConfigError, match="has no flipped labels"):
        plan_of(imagenet_config)


def test_every_key_of_the_schemas_has_a_description():
    schema = load_yaml(SCHEMA)

    def undescribed(node, path):
        for key, child in node.get("properties", {}).items():
            if "description" not in child:
                yield f"{path}.{key}"
            yield from undescribed(child, f"{path}.{key}")

    assert list(undescribed(schema, "")) == []
    assert list(undescribed(schema["$defs"]["experiment"], "experiments.<name>")) == []
    for task in BUILTIN_TASKS:  # the experiment schema as the task extends it
        assert list(undescribed(experiment_schema(schema, load_task(task)), task)) == []
