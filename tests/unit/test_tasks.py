"""The task contract: every built-in task has it, its declarations are well formed, and
``load_task`` names what is wrong with a task that does not."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest
from tests.rule_files import WORKFLOW_FILES, written_rules

from losskernel import plan
from losskernel.config import experiment_schema, load_yaml
from losskernel.params import PARAMS
from losskernel.tasks import BUILTIN_TASKS, defaults, load_task
from losskernel.tasks.protocol import (
    TASK_MEMBERS,
    Task,
    declared_settings,
    resolve_callable,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = load_yaml(ROOT / "workflow/schemas/config.schema.yaml")
SHIPPED = {"modular_arithmetic": ("config/config.yaml", "modarith"),
           "digits": ("config/config.yaml", "digits"),
           "imagenet": ("config/imagenet.yaml", "imagenet"),
           "fashion": ("config/config.yaml", "fashion")}
"""Each built-in task's experiment in the config files that ship with the workflow."""


@pytest.fixture(autouse=True)
def fresh_task_cache():
    """``load_task`` caches by name: each test sees (and leaves) an empty cache."""
    load_task.cache_clear()
    yield
    load_task.cache_clear()


def declarations(task: Task) -> tuple:
    return (*task.DATA_FILES, *task.READINGS, *task.FIGURES)


def schema_refs(schema: object) -> list[str]:
    """Every ``$ref`` anywhere in a schema."""
    if isinstance(schema, dict):
        own = [schema["$ref"]] if "$ref" in schema else []
        return own + [ref for value in schema.values() for ref in schema_refs(value)]
    if isinstance(schema, list):
        return [ref for value in schema for ref in schema_refs(value)]
    return []


def test_the_contract_has_the_known_members():
    assert TASK_MEMBERS == (
        "INPUT_ATTRIBUTES", "SETTINGS_SCHEMA", "STRUCTURE_SCORE", "DATA_FILES", "READINGS",
        "FIGURES", "check_settings", "check_files", "data_sources", "make_data", "build_model",
        "pretrained", "load_weights", "available_checkpoints", "training_split", "monitor_set",
        "evaluate", "is_converged", "select_kernel_inputs", "excluded_edges", "structure_score",
        "count_kernel_inputs", "timing_example")
    assert set(defaults.__all__) < set(TASK_MEMBERS)  # every default is a hook of the contract


@pytest.mark.parametrize("name", list(BUILTIN_TASKS))
def test_builtin_task_has_every_member(name):
    task = load_task(name)
    assert task.__name__ == BUILTIN_TASKS[name]
    assert [member for member in TASK_MEMBERS if not hasattr(task, member)] == []
    assert load_task(name) is task  # cached
    attributes = task.INPUT_ATTRIBUTES
    assert isinstance(attributes, tuple) and len(set(attributes)) == len(attributes)
    assert "obs_id" not in attributes
    assert isinstance(task.STRUCTURE_SCORE, str) and task.STRUCTURE_SCORE


@pytest.mark.parametrize("name", list(BUILTIN_TASKS))
def test_settings_schema_is_a_valid_schema_once_merged(name):
    task = load_task(name)
    merged = experiment_schema(SCHEMA, task)
    jsonschema.Draft202012Validator.check_schema(merged)
    own = task.SETTINGS_SCHEMA.get("required", [])
    assert set(merged["required"]) >= {"task", "sampling", *own}
    unresolved = [ref for ref in schema_refs(task.SETTINGS_SCHEMA)
                  if ref.removeprefix("#/$defs/") not in SCHEMA["$defs"]]
    assert unresolved == []
    # the task's experiment in the shipped config passes it, its references resolved
    path, experiment = SHIPPED[name]
    settings = load_yaml(ROOT / path)["experiments"][experiment]
    assert settings["task"] == name
    jsonschema.Draft202012Validator(merged).validate(settings)
    # and the task's part is checked: its data section without its first required key fails
    first = task.SETTINGS_SCHEMA["properties"]["data"]["required"][0]
    data = {key: value for key, value in settings["data"].items() if key != first}
    with pytest.raises(jsonschema.ValidationError, match=f"'{first}' is a required property"):
        jsonschema.Draft202012Validator(merged).validate({**settings, "data": data})


@pytest.mark.parametrize("name", list(BUILTIN_TASKS))
def test_readings_name_unique_metrics_and_tsv_tables(name):
    for reading in load_task(name).READINGS:
        assert len(set(reading.metrics)) == len(reading.metrics), reading.name
        assert reading.metrics, reading.name
        assert "metrics" not in reading.tables  # the metrics table is an output of its own
        assert all(file.endswith(".tsv") for file in reading.tables.values()), reading.tables
        assert all(file.endswith((".nc", ".tsv")) for file in reading.inputs.values())
        assert callable(resolve_callable(reading.compute))


@pytest.mark.parametrize("name", list(BUILTIN_TASKS))
def test_figure_captions_exist_and_figures_can_be_drawn(name):
    for figure_set in load_task(name).FIGURES:
        assert figure_set.figures, figure_set.name
        for figure in figure_set.figures.values():
            caption = Path(figure.caption)
            assert caption.is_file(), f"{figure.name}: no caption file {caption}"
            assert caption.read_text().strip(), f"{figure.name}: empty caption {caption}"
        assert {scope for scope, _ in figure_set.inputs.values()} <= {
            "figure_seed", "every_seed", "experiment"}
        assert all(file.endswith((".nc", ".tsv")) for _, file in figure_set.inputs.values())
        assert callable(resolve_callable(figure_set.draw))


def workflow_rules() -> set[str]:
    """The rules written in the Snakefile and workflow/rules/*.smk (``rule <name>:``)."""
    return set(written_rules())


def workflow_figures() -> set[str]:
    """The figures the workflow's own rules draw, ``results/figures/{experiment}/<name>.png``
    (the appendix analyses' and the calibration's)."""
    return {name for path in WORKFLOW_FILES if path.name != "tasks.smk"
            for name in re.findall(r"results/figures/\{experiment\}/(\w+)\.png",
                                   path.read_text())}


def test_the_workflow_rules_and_figures_are_read_from_its_files():
    assert set(PARAMS) < workflow_rules()  # and the rules without params: all, paper, ...
    assert {"all", "paper", "run_config", "calibrate"} < workflow_rules()
    assert workflow_figures() == {
        "gamma_cka", "gamma_lift", "convergence", "mislabel_roc", "self_covariance",
        "umap_mislabels", "trajectory_score", "trajectory_umap", "diagnostics", "calibration"}


def test_declared_rules_are_unique_across_the_builtin_tasks_and_apart_from_the_fixed_ones():
    tasks = [load_task(name) for name in BUILTIN_TASKS]
    rules = [declaration.rule for task in tasks for declaration in declarations(task)]
    # one declaration may serve several tasks (Figure 1's reading and figures serve ImageNet
    # and Fashion-MNIST); different declarations never share a rule
    by_rule = {}
    for task in tasks:
        for declaration in declarations(task):
            assert by_rule.setdefault(declaration.rule, declaration) == declaration
    assert set(rules).isdisjoint(workflow_rules())
    assert sorted(set(rules)) == ["fashion_hierarchy", "plot_experiment", "plot_figure1",
                                  "score_hierarchy", "score_separation", "wordnet_hierarchy"]
    # readings and figures write files the generic analyses do not
    readings = list({reading.name for task in tasks for reading in task.READINGS})
    assert set(readings).isdisjoint({*plan.GENERIC_READINGS, *plan.EXPERIMENT_READINGS})
    figures = {figure.name for task in tasks for figure_set in task.FIGURES
               for figure in figure_set.figures.values()}
    assert figures.isdisjoint(workflow_figures())
    for task in tasks:
        for data_file in task.DATA_FILES:
            assert data_file.path.endswith(".tsv") and callable(resolve_callable(data_file.make))


def test_an_unknown_name_names_the_builtin_tasks():
    with pytest.raises(ValueError) as unknown:
        load_task("mnist")
    message = str(unknown.value)
    assert message.startswith("unknown task 'mnist': ")
    assert "(modular_arithmetic, digits, imagenet, fashion)" in message
    assert "No module named 'mnist'" in message


def write_module(root: Path, dotted: str, source: str) -> None:
    """The module ``dotted`` (a package and its module) under ``root``."""
    package, module = dotted.split(".")
    (root / package).mkdir(exist_ok=True)
    (root / package / "__init__.py").touch()
    (root / package / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """A directory on ``sys.path`` for task modules; what they import is forgotten after."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("usertasks"):
            del sys.modules[name]


def test_an_import_path_that_does_not_import_says_how_to_fix_it(user_modules):
    with pytest.raises(ValueError) as absent:
        load_task("usertasks_absent.task")
    message = str(absent.value)
    assert "'usertasks_absent.task'" in message
    assert "usertasks_absent.task cannot be imported (No module named 'usertasks_absent')" in (
        message)
    assert message.endswith("install your task's package or put it on PYTHONPATH")
    # a module that is there but whose own import fails names the missing dependency
    write_module(user_modules, "usertasks_broken.task", "import usertasks_not_installed\n")
    with pytest.raises(ValueError, match=r"usertasks_broken\.task cannot be imported \(No module "
                                         r"named 'usertasks_not_installed'\)"):
        load_task("usertasks_broken.task")


def test_a_module_lacking_members_names_the_missing_ones(user_modules):
    write_module(user_modules, "usertasks_half.task", """\
        from losskernel.tasks.modarith import *  # noqa: F403 - every member...
        del evaluate, READINGS, timing_example  # noqa: F821 - ...but three
        """)
    with pytest.raises(ValueError) as lacking:
        load_task("usertasks_half.task")
    message = str(lacking.value)
    assert message.startswith("task 'usertasks_half.task': usertasks_half.task lacks READINGS, "
                              "evaluate, timing_example of the task contract")
    assert "losskernel.tasks.defaults" in message  # where the optional hooks are


def test_a_complete_user_module_loads_by_import_path(user_modules):
    write_module(user_modules, "usertasks_full.task", """\
        from losskernel.tasks.modarith import *  # noqa: F403 - a renamed modular arithmetic
        """)
    task = load_task("usertasks_full.task")
    assert task.__name__ == "usertasks_full.task"
    assert task.make_examples is load_task("modular_arithmetic").make_examples
    # a top-level module is an import path too
    (user_modules / "usertasks_toplevel.py").write_text(
        "from losskernel.tasks.digits import *  # noqa: F403\n")
    assert load_task("usertasks_toplevel").__name__ == "usertasks_toplevel"


def test_declared_settings_are_read_at_dotted_keys_by_their_last_component():
    settings = {"analysis": {"knn_k": 5, "umap": {"seed": 1}, "trajectory": None},
                "sampling": {"seeds": [0, 2]}}
    keys = ["analysis.knn_k", "analysis.umap.seed", "sampling.seeds", "analysis.trajectory",
            "analysis.gamma_sweep", "analysis.knn_k.deeper", "data.root"]
    assert declared_settings(settings, keys) == {
        "knn_k": 5, "seed": 1, "seeds": [0, 2], "trajectory": None, "gamma_sweep": None,
        "deeper": None, "root": None}
    assert declared_settings(settings, []) == {}


def test_resolve_callable_imports_module_colon_function():
    assert resolve_callable("json:dumps") is json.dumps
    assert resolve_callable("losskernel.tasks:load_task") is load_task
    assert resolve_callable(len) is len
    with pytest.raises(ModuleNotFoundError, match="usertasks_nowhere"):
        resolve_callable("usertasks_nowhere:f")


def test_default_hooks_of_a_task_with_data_at_hand():
    """modular arithmetic keeps the defaults: counted and timed on its own data."""
    import torch

    settings = {"task": "modular_arithmetic",
                "data": {"modulus": 11, "operations": ["add", "div"], "train_fraction": 0.8,
                         "split_seed": 0},
                "model": {"architecture": "mlp", "disjoint_by_task": False, "d_model": 4,
                          "num_heads": 1, "d_mlp": 8, "embed_std": 0.3, "init_seed": 0},
                "kernel_inputs": {"split": "train", "per_task": 3, "seed": 0},
                "training": {"num_checkpoints": 7, "max_steps": 1000}}
    task = load_task("modular_arithmetic")
    assert task.count_kernel_inputs(settings) == (6, "counted from the data")
    model, inputs, targets = task.timing_example(settings, 8)
    data = task.make_data(settings["data"])
    chosen = data.tensors(task.select_kernel_inputs(data, settings["kernel_inputs"]))
    order = torch.arange(8) % 6  # six kernel inputs, repeated to fill eight
    assert torch.equal(inputs, chosen.inputs[order]) and torch.equal(targets, chosen.targets[order])
    assert model(inputs).shape == (8, 11)
    assert task.pretrained(settings["model"]) is None
    assert task.available_checkpoints(settings) == 6  # the distinct steps saved (schedule)
    assert task.monitor_set(data) is None
    assert task.check_files(settings) is None
    with pytest.raises(NotImplementedError, match="loads no pretrained weights"):
        task.load_weights(model, "weights.pt")
