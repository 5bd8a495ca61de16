"""Mistakes researchers make in a config, each refused before any job starts, naming the key.

Every case is an override laid over config/config.yaml, key by key as ``snakemake
--configfile config/config.yaml override.yaml`` lays it (``DELETE`` removes a key, which an
override file cannot, to show a forgotten one). The merged config goes through
:meth:`losskernel.plan.Plan.from_config`, the one call the Snakefile makes to validate at parse
time (workflow/rules/common.smk), so the table runs in seconds. Two tests run ``snakemake -n``
itself (on a number YAML reads as text, and on a NaN), and two the ``losskernel
validate-config`` command.

Mistakes already tested elsewhere are not repeated here: a non-numeric step size, negative
localization, non-prime modulus, too many kernel inputs per task, knn_k of modarith, diagnostics
blocks against draws, unknown task ``mnist``, variant cycles and ``model_from`` errors
(tests/unit/test_config.py); a missing ImageNet root (test_config.py, test_imagenet.py).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from losskernel import cli
from losskernel.config import ConfigError, load_config
from losskernel.plan import Plan

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
DEFAULT = ROOT / "config/config.yaml"
DELETE = object()
"""An override value that removes the key."""


def experiment(name: str, **sections: object) -> dict:
    """An override of one experiment's sections."""
    return {"experiments": {name: sections}}


CASES = [
    # (id, override, the key the message names, what else it says: the problem or the fix)
    # sampling
    ("step-size-as-yaml-string", experiment("digits", sampling={"step_size": "1e-3"}),
     # YAML 1.1 (PyYAML, snakemake) reads `step_size: 1e-3` as the string '1e-3'
     "experiments.digits.sampling.step_size", "YAML reads 1e-3 as a string: write 1.0e-3"),
    ("step-size-zero", experiment("modarith", sampling={"step_size": 0}),
     "experiments.modarith.sampling.step_size", "0 is less than or equal to the minimum of 0"),
    ("step-size-negative", experiment("fashion", sampling={"step_size": -1.0e-4}),
     "experiments.fashion.sampling.step_size", "-0.0001 is less than or equal to the minimum"),
    ("nbeta-negative", experiment("modarith", sampling={"nbeta": -30}),
     "experiments.modarith.sampling.nbeta", "-30 is less than the minimum of 0"),
    ("num-chains-quoted", experiment("modarith", sampling={"num_chains": "4"}),
     "experiments.modarith.sampling.num_chains", "It is quoted: write 4 without quotes"),
    ("seeds-not-a-list", experiment("digits", sampling={"seeds": 0}),
     "experiments.digits.sampling.seeds", "0 is not of type 'array'"),
    ("seeds-duplicated", experiment("modarith", sampling={"seeds": [0, 1, 1]}),
     "experiments.modarith.sampling.seeds", "[0, 1, 1] has non-unique elements"),
    ("num-chains-misspelt", experiment("modarith", sampling={"num_chain": 4}),
     "experiments.modarith.sampling", "Did you mean 'num_chains' (not 'num_chain')?"),
    ("step-size-forgotten", experiment("modarith", sampling={"step_size": DELETE}),
     "experiments.modarith.sampling", "'step_size' is a required property"),
    ("preconditioner-misspelt", experiment("digits", sampling={"preconditioner": "RMSprop"}),
     "experiments.digits.sampling.preconditioner", "'RMSprop' is not one of ['identity', "),
    ("num-draws-too-few-for-diagnostic-blocks", experiment("digits", sampling={"num_draws": 3}),
     "experiments.digits.analysis.diagnostics.batches", "lower it or raise their num_draws"),
    ("standard-error-batches-above-draws",
     experiment("modarith", analysis={"standard_error_batches": 2000}),
     "experiments.modarith.analysis.standard_error_batches",
     "2000 blocks need at least as many draws (sampling.num_draws = 1000); lower it or raise"),
    ("batch-larger-than-training-set", experiment("digits", sampling={"batch_size": 5000}),
     "experiments.digits.sampling.batch_size", "5000 exceeds the 1347 training images; lower"),
    # kernel
    ("centring-misspelt", experiment("modarith", kernel={"centring": "per-chain"}),
     "experiments.modarith.kernel.centring", "'per-chain' is not one of ['pooled', 'per_chain']"),
    # data
    ("train-fraction-one", experiment("modarith", data={"train_fraction": 1.0}),
     "experiments.modarith.data.train_fraction", "1.0 is greater than or equal to the maximum"),
    ("train-fraction-in-percent", experiment("digits", data={"train_fraction": 75}),
     "experiments.digits.data.train_fraction", "75 is greater than or equal to the maximum of 1"),
    ("label-noise-one", experiment("digits", data={"label_noise": 1.0}),
     "experiments.digits.data.label_noise", "1.0 is greater than or equal to the maximum of 1"),
    ("operation-unknown", experiment("modarith", data={"operations": ["add", "mul"]}),
     "experiments.modarith.data.operations.1", "'mul' is not one of ['add', 'div']"),
    ("fashion-data-missing", experiment("fashion", data={"root": "/nonexistent/fashion-mnist"}),
     "experiments.fashion.data.root", "Install Debian's Fashion-MNIST"),
    # model and training
    ("architecture-misspelt", experiment("modarith", model={"architecture": "transfomer"}),
     "experiments.modarith.model.architecture", "'transfomer' is not one of ['transformer', "),
    ("heads-do-not-divide-width", experiment("modarith", model={"num_heads": 5}),
     "experiments.modarith.model.num_heads", "d_model=32 is not divisible by num_heads=5"),
    ("target-accuracy-in-percent",
     experiment("modarith", training={"target_test_accuracy": 99}),
     "experiments.modarith.training.target_test_accuracy", "99 is greater than the maximum of 1"),
    ("max-steps-as-yaml-string", experiment("modarith", training={"max_steps": "1e4"}),
     "experiments.modarith.training.max_steps", "YAML reads 1e4 as a string: write 10000"),
    ("adam-beta-one", experiment("modarith", training={"betas": [0.9, 1.0]}),
     "experiments.modarith.training.betas.1", "1.0 is greater than or equal to the maximum of 1"),
    # kernel inputs and analyses
    ("mislabels-on-test-images", experiment("digits", kernel_inputs={"split": "test"}),
     "experiments.digits.kernel_inputs.split",
     "the mislabeled inputs are in the training split; use 'train' or 'all'"),
    ("knn-k-as-many-as-inputs", experiment("fashion", analysis={"knn_k": 500}),
     "experiments.fashion.analysis.knn_k",
     "500 must be smaller than the 500 kernel inputs; lower it or raise kernel_inputs.per_class"),
    ("sweep-knn-k-as-many-as-inputs",
     experiment("digits", analysis={"gamma_sweep": {"knn_k": 1347}}),
     "experiments.digits.analysis.gamma_sweep.knn_k",
     "1347 must be smaller than the 1347 kernel inputs; lower it or choose a larger "),
    ("figure-seed-left-out-of-seeds", experiment("digits", sampling={"seeds": [1, 2]}),
     "experiments.digits.analysis.figure_seed",
     "0 is not one of sampling.seeds [1, 2]; choose one of them or add it there"),
    ("gamma-sweep-empty", experiment("digits", analysis={"gamma_sweep": {"localizations": []}}),
     "experiments.digits.analysis.gamma_sweep.localizations", "[] is too short"),
    ("gamma-sweep-zero",
     experiment("fashion", analysis={"gamma_sweep": {"localizations": [0, 1000, 3000]}}),
     "experiments.fashion.analysis.gamma_sweep.localizations.0",
     "0 is less than or equal to the minimum of 0"),
    ("gamma-sweep-overrides-localization",
     experiment("digits", analysis={"gamma_sweep": {"sampling": {"localization": 10}}}),
     "experiments.digits.analysis.gamma_sweep.sampling", "'localization' is not one of"),
    ("trajectory-sampling-misspelt",
     experiment("digits", analysis={"trajectory": {"sampling": {"num_draw": 100}}}),
     "experiments.digits.analysis.trajectory.sampling", "'num_draw' is not one of"),
    ("edge-rule-of-another-task",
     experiment("digits", analysis={"umap": {"excluded_edges": "shared_token"}}),
     "experiments.digits.analysis.umap.excluded_edges",
     "'shared_token' is not one of ['none', 'same_output']"),
    # headline metrics
    ("headline-metric-misspelt", experiment("modarith", headline_metrics=["roc_acu"]),
     "experiments.modarith.headline_metrics", "['roc_acu'] need an analysis this experiment"),
    ("headline-metrics-not-a-list", experiment("modarith", headline_metrics="roc_auc"),
     "experiments.modarith.headline_metrics", "'roc_auc' is not of type 'array'"),
    ("headline-metrics-key-misspelt", experiment("digits", headline_metric=["cka_half"]),
     "experiments.digits", "Did you mean 'headline_metrics' (not 'headline_metric')?"),
    # experiments
    ("task-misspelt", experiment("modarith", task="modular-arithmetic"),
     "experiments.modarith.task", "not a built-in task (modular_arithmetic, digits, imagenet"),
    ("based-on-misspelt", experiment("digits-noisy", based_on="digit", data={"label_noise": 0.2}),
     "experiments.digits-noisy.based_on", "'digit' is not an experiment; choose from ['digits',"),
    ("experiment-name-with-underscore", experiment("digits_v2", based_on="digits"),
     "experiments", "'digits_v2' does not match '^[a-z][a-z0-9-]*$'"),
    ("experiments-misspelt", {"experiment": {"digits": {"sampling": {"num_chains": 2}}}},
     "(top level)", "Did you mean 'experiments' (not 'experiment')?"),
    ("wordnet-key-misspelt", {"wordnet": {"nltk_dir": "results/nltk"}},
     "wordnet", "Did you mean 'nltk_data' (not 'nltk_dir')?"),
    ("device-misspelt", experiment("digits", sampling={"device": "gpu"}),
     "experiments.digits.sampling.device", "does not match"),
    ("checkpoints-collide",
     experiment("digits", training={"max_steps": 30, "num_checkpoints": 20},
                analysis={"trajectory": {"num_checkpoints": 18}}),
     "experiments.digits.analysis.trajectory.num_checkpoints", "exceeds the 15 checkpoints"),
    ("check-rhat-below-one", experiment("fashion", analysis={"checks": {"max_rhat": 0.99}}),
     "experiments.fashion.analysis.checks.max_rhat", "less than or equal to the minimum of 1"),
    ("allow-unconverged-as-text", experiment("modarith", training={"allow_unconverged": "yes"}),
     "experiments.modarith.training.allow_unconverged", "is not of type 'boolean'"),
    # non-finite numbers (YAML's .nan and .inf): the schema's minimum lets NaN through
    ("nbeta-nan", experiment("modarith", sampling={"nbeta": float("nan")}),
     "experiments.modarith.sampling.nbeta", "nan is not a finite number"),
    ("localization-inf", experiment("digits", sampling={"localization": float("inf")}),
     "experiments.digits.sampling.localization", "inf is not a finite number"),
    ("gamma-sweep-minus-inf",
     experiment("digits", analysis={"gamma_sweep": {"localizations": [10, float("-inf")]}}),
     "experiments.digits.analysis.gamma_sweep.localizations.1", "-inf is not a finite number"),
    ("label-noise-nan", experiment("digits", data={"label_noise": float("nan")}),
     "experiments.digits.data.label_noise", "write a finite value"),
    ("learning-rate-inf-in-a-variant",
     {"experiments": {"digits-fast": {"based_on": "digits",
                                      "training": {"learning_rate": float("inf")}}}},
     "experiments.digits-fast.training.learning_rate", "inf is not a finite number"),
    # execution
    ("chains-per-job-zero", {"chains_per_job": 0},
     "chains_per_job", "'all' was expected; 0 is less than the minimum of 1"),
    ("chains-per-job-word", {"chains_per_job": "each"},
     "chains_per_job", "'all' was expected; 'each' is not of type 'integer'"),
]


def lay(config: dict, override: Mapping) -> dict:
    """``override`` laid over ``config`` in place as snakemake lays a second config file
    (mappings key by key, anything else replaced), ``DELETE`` removing the key."""
    for key, value in override.items():
        if value is DELETE:
            del config[key]
        elif isinstance(value, Mapping) and isinstance(config.get(key), dict):
            lay(config[key], value)
        else:
            config[key] = copy.deepcopy(value)
    return config


@pytest.fixture(scope="module")
def default_config() -> dict:
    return load_config([DEFAULT])


def test_the_cases_are_distinct():
    ids = [case[0] for case in CASES]
    assert len(CASES) >= 22 and len(set(ids)) == len(ids)


@pytest.mark.parametrize(("name", "override", "key", "says"),
                         [pytest.param(*case, id=case[0]) for case in CASES])
def test_a_bad_config_is_refused_naming_the_key(default_config, name, override, key, says):
    config = lay(copy.deepcopy(default_config), override)
    with pytest.raises(ConfigError) as refused:
        # as the Snakefile reads the config; only the missing-data case needs its files checked
        Plan.from_config(config, SCHEMA, source="override.yaml",
                         check_files=name == "fashion-data-missing")
    message = str(refused.value)
    assert f"invalid config key {key}: " in message
    assert says in message


BAD_YAML = "experiments:\n  digits:\n    sampling: {step_size: 1e-3}\n"
"""A mistake as a researcher types it: YAML 1.1 reads 1e-3 as a string."""
BAD_KEY = "experiments.digits.sampling.step_size"
NON_FINITE_YAML = {  # YAML's spellings of NaN and infinity, each read as a float
    ".nan": ("experiments:\n  modarith:\n    sampling: {nbeta: .nan}\n",
             "experiments.modarith.sampling.nbeta: nan is not a finite number"),
    ".inf": ("experiments:\n  digits:\n    sampling: {localization: .inf}\n",
             "experiments.digits.sampling.localization: inf is not a finite number"),
    "-.Inf": ("experiments:\n  fashion:\n    sampling: {step_size: -.Inf}\n",
              "experiments.fashion.sampling.step_size: -inf is not a finite number"),
}


def dry_run(override: Path, work: Path) -> subprocess.CompletedProcess:
    """``snakemake -n`` of the default config with ``override`` laid over it, in ``work``."""
    work.mkdir()
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(work), "-n", "--configfile", str(DEFAULT), str(override)],
        cwd=work, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("spelling", list(NON_FINITE_YAML))
def test_snakemake_and_validate_config_refuse_non_finite_numbers(tmp_path, capsys, spelling):
    text, says = NON_FINITE_YAML[spelling]
    (tmp_path / "override.yaml").write_text(text)
    code = cli.main(["validate-config", "--config", str(DEFAULT), str(tmp_path / "override.yaml"),
                     "--schema", str(SCHEMA)])
    assert code == 2
    assert f"invalid config key {says}" in capsys.readouterr().err
    if spelling == ".nan":  # the dry run reads the config through the same call
        run = dry_run(tmp_path / "override.yaml", tmp_path / "work")
        assert run.returncode != 0 and f"invalid config key {says}" in run.stdout + run.stderr
        assert not (tmp_path / "work/results").exists()


def test_snakemake_refuses_a_bad_override_before_any_job(tmp_path):
    (tmp_path / "override.yaml").write_text(BAD_YAML)
    run = dry_run(tmp_path / "override.yaml", tmp_path / "work")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-3000:]
    assert f"invalid config key {BAD_KEY}: '1e-3' is not of type 'number'" in output
    assert "write 1.0e-3" in output
    assert not (tmp_path / "work/results").exists()  # nothing ran


def test_validate_config_exits_2_naming_the_key(tmp_path, capsys):
    (tmp_path / "override.yaml").write_text(BAD_YAML)
    code = cli.main(["validate-config", "--config", str(DEFAULT), str(tmp_path / "override.yaml"),
                     "--schema", str(SCHEMA)])
    assert code == 2
    assert f"invalid config key {BAD_KEY}: " in capsys.readouterr().err
