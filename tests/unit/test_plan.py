"""The plan of a config: runs and their settings, readings, figures, and each job's arguments
(losskernel.plan, losskernel.params). Which files the jobs read and write is Snakemake's to
resolve from the rules; the dry runs of tests/workflow check it."""

from pathlib import Path

import pytest

from losskernel.config import ConfigError, load_config
from losskernel.params import job_params
from losskernel.plan import (
    Experiment,
    Plan,
    block_name,
    chain_blocks,
    check_models,
    quoted_settings,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
APPENDIX_ANALYSES = ("mislabels", "gamma_sweep", "trajectory", "diagnostics")
"""The analysis sections whose figures workflow/rules/figures.smk draws."""


@pytest.fixture(scope="module")
def plan() -> Plan:
    return Plan.from_config(load_config([ROOT / "config/config.yaml"]), SCHEMA, check_files=False)


def test_runs_of_the_default(plan):
    digits = plan.experiment("digits")
    # the sweep changes sampling settings (2 chains), so γ = 100, the localization of seed 0,
    # gets its own run
    assert digits.gamma_runs == ["gamma10", "gamma30", "gamma100", "gamma300", "gamma1000"]
    # each γ its own seed: γ = 100 (nearest the localization) the sweep's, the others the
    # next ones; the replica of γ = 100 at the seed after them
    assert digits.gamma_seeds == [1, 2, 0, 3, 4]
    assert digits.gamma_replica == ("gamma100-seed5", 100, 5)
    assert list(digits.runs) == ["seed0", "seed1", "gamma10", "gamma30", "gamma100",
                                 "gamma300", "gamma1000", "gamma100-seed5",
                                 *(f"checkpoint{i}" for i in range(5))]
    gamma = digits.run("gamma300")
    assert (gamma.seed, gamma.sampling["localization"], gamma.checkpoint) == (3, 300, None)
    replica = digits.run("gamma100-seed5")
    assert replica.seed == 5 and replica.sampling == digits.run("gamma100").sampling
    assert gamma.sampling["num_chains"] == 2 and digits.run("seed0").sampling["num_chains"] == 4
    assert "seeds" not in gamma.sampling  # a new seed must not rerun this run
    checkpoint = digits.run("checkpoint4")
    assert checkpoint.checkpoint == {"index": 4, "num_checkpoints": 5}
    assert checkpoint.sampling["num_draws"] == 200  # the trajectory's override
    assert checkpoint.sampling["localization"] == 100
    assert list(plan.experiment("modarith-control").runs) == ["seed0", "seed1"]
    with pytest.raises(KeyError, match=r"no run 'gamma7'.*its runs are seed0, seed1"):
        digits.run("gamma7")


def test_a_sweep_on_a_seed_not_sampled_runs_every_gamma():
    config = load_config([ROOT / "config/config.yaml"])
    config["experiments"]["digits"]["analysis"]["gamma_sweep"]["seed"] = 7
    digits = Plan.from_config(config, SCHEMA).experiment("digits")
    assert digits.gamma_runs == ["gamma10", "gamma30", "gamma100", "gamma300", "gamma1000"]
    assert digits.run("gamma100").seed == 7 and digits.run("gamma10").seed == 8


def test_the_gamma_nearest_the_localization_reuses_the_main_run():
    """Without sampling overrides, the γ nearest the localization runs at the sweep's seed:
    equal to the localization, that is a main run; the replica is a new run."""
    config = load_config([ROOT / "config/config.yaml"])
    sweep = config["experiments"]["digits"]["analysis"]["gamma_sweep"]
    sweep["sampling"], sweep["localizations"] = {}, [30, 100, 1000]
    digits = Plan.from_config(config, SCHEMA, check_files=False).experiment("digits")
    assert digits.gamma_runs == ["gamma30", "seed0", "gamma1000"]
    assert digits.gamma_seeds == [1, 0, 2]
    assert digits.gamma_replica == ("gamma100-seed3", 100, 3)
    # no run gamma100: the replica is the one new run beside the main runs' seed0
    assert [run for run in digits.runs if "gamma" in run] == [
        "gamma30", "gamma1000", "gamma100-seed3"]
    assert digits.run("gamma100-seed3").sampling == digits.run("seed0").sampling


def plan_of(config) -> Plan:
    return Plan.from_config(config, SCHEMA, check_files=False)


def test_calibration_grid_and_points(plan):
    """The grid: the configured ε × 0.3, 1, 3 unless listed, nβ × 0.1, 1, 10 and the nβ = 0
    control, the configured γ; each point's name gives its setting back."""
    digits = plan.experiment("digits")
    grid = digits.calibration_grid
    assert len(grid) == 3 * 4
    assert sorted({point["step_size"] for point in grid}) == [3e-4, 1e-3, 3e-3]
    assert sorted({point["nbeta"] for point in grid}) == [0, 5, 50, 500]
    assert {point["localization"] for point in grid} == {100}
    assert digits.calibration_points[1] == "eps0.0003-nbeta5-gamma100"
    assert digits.calibration_setting("eps0.003-nbeta0-gamma100") == {
        "step_size": 3e-3, "nbeta": 0.0, "localization": 100}
    modarith = plan.experiment("modarith")  # lists its step sizes
    assert sorted({point["step_size"] for point in modarith.calibration_grid}) == [
        2e-4, 6e-4, 1.8e-3]
    with pytest.raises(KeyError, match="no calibration point 'eps1-nbeta1-gamma1'"):
        digits.calibration_setting("eps1-nbeta1-gamma1")
    assert len(set(digits.calibration_points)) == 12  # a job each
    # a point's job samples at its setting with the calibration's chains, draws and seed
    point = job_params(plan, "calibration_point",
                       {"experiment": "digits", "point": "eps0.003-nbeta0-gamma100"})
    assert point["seed"] == 0
    assert {key: point["sampling"][key] for key in (
        "step_size", "nbeta", "localization", "num_chains", "num_draws")} == {
        "step_size": 3e-3, "nbeta": 0.0, "localization": 100, "num_chains": 4, "num_draws": 200}
    with pytest.raises(KeyError, match="no calibration point 'eps1-nbeta1-gamma1'"):
        job_params(plan, "calibration_point", {"experiment": "digits",
                                               "point": "eps1-nbeta1-gamma1"})


def test_every_experiment_has_diagnostic_headline_rows(plan):
    for experiment in plan.experiments.values():
        assert experiment.headline_metrics[-3:] == [
            "worst_rhat", "median_ess_bulk", "seed_to_seed_cka"]
    config = load_config([ROOT / "config/config.yaml"])
    config["experiments"]["digits"]["sampling"]["seeds"] = [0]
    single = plan_of(config).experiment("digits")
    assert single.headline_metrics[-2:] == ["worst_rhat", "median_ess_bulk"]


def test_readings_metrics_and_figures(plan):
    modarith, digits = plan.experiment("modarith"), plan.experiment("digits")
    assert modarith.seed_readings == ["separation"]
    assert modarith.experiment_readings == ["model", "trajectory", "diagnostics"]
    assert digits.seed_readings == ["mislabels", "convergence"]
    assert "cross_task_z" in modarith.metrics and "mislabel_roc_auc" in digits.metrics
    control = plan.experiment("modarith-control")
    assert [figure.name for figure_set in control.task.FIGURES
            for figure in figure_set.figures.values()] == [
        "kernel_heatmap", "kernel_distributions", "umap", "roc"]
    # each experiment's figures: its task's, then those of its appendix analyses
    assert {name: (sum(len(figure_set.figures) for figure_set in experiment.task.FIGURES),
                   [section for section in APPENDIX_ANALYSES if section in experiment.analysis])
            for name, experiment in plan.experiments.items()} == {
        "modarith": (4, ["trajectory", "diagnostics"]), "modarith-control": (4, ["diagnostics"]),
        "digits": (0, ["mislabels", "gamma_sweep", "trajectory", "diagnostics"]),
        "fashion": (6, ["gamma_sweep", "trajectory", "diagnostics"])}


def test_a_job_has_its_arguments(plan):
    chain = job_params(plan, "sample_chain", {"experiment": "digits", "run": "checkpoint2",
                                              "chain": "0-1"})
    assert chain["seed"] == 0 and chain["chains"] == [0, 1]
    assert chain["checkpoint"] == {"index": 2, "num_checkpoints": 5}
    assert set(chain["settings"]) == {"data", "kernel_inputs"}
    assert "state_dir" not in chain  # the rule's own param: the directory of its output
    reading = job_params(plan, "score_separation", {"experiment": "modarith-control",
                                                    "seed": "2"})
    assert reading == {"task": "modular_arithmetic", "reading": "separation",
                       "settings": {"knn_k": 20, "standard_error_batches": 10}}
    with pytest.raises(KeyError, match=r"in the jobs chain=0-3 \(chains_per_job: all\), not "
                                       r"chain=1"):
        job_params(plan, "sample_chain", {"experiment": "digits", "run": "seed0", "chain": "1"})
    with pytest.raises(KeyError, match=r"no run 'gamma7'.*its runs are seed0, seed1"):
        job_params(plan, "sample_chain", {"experiment": "digits", "run": "gamma7",
                                          "chain": "0-1"})
    with pytest.raises(KeyError, match="no rule 'sample'"):
        job_params(plan, "sample", {})


@pytest.mark.parametrize(("chains_per_job", "blocks"), [
    ("all", ["0-3"]), (1, ["0", "1", "2", "3"]), (2, ["0-1", "2-3"]), (3, ["0-2", "3"]),
    (8, ["0-3"])])
def test_chains_per_job_splits_a_run_into_blocks_of_chains(chains_per_job, blocks):
    config = load_config([ROOT / "config/config.yaml"])
    plan = plan_of({**config, "chains_per_job": chains_per_job})
    assert [block_name(block) for block in chain_blocks(4, chains_per_job)] == blocks
    assert list(plan.run_blocks("digits", "seed0")) == blocks
    first = job_params(plan, "sample_chain", {"experiment": "digits", "run": "seed0",
                                              "chain": blocks[0]})
    assert first["chains"] == list(chain_blocks(4, chains_per_job)[0])


def test_the_runs_and_sampling_jobs_of_the_default(plan):
    # 2 seeds of modarith and of each of the 3 models of digits and fashion (4 chains) and of
    # the control (2 chains); checkpoints of modarith, digits and fashion and their γ with its
    # replica (2 chains), on model 0 only
    assert {name: len(experiment.runs) for name, experiment in plan.every_model.items()} == {
        "modarith": 2 + 5, "modarith-control": 2, "digits": 2 + 5 + 1 + 5,
        "fashion": 2 + 4 + 1 + 5, "digits/model1": 2, "digits/model2": 2,
        "fashion/model1": 2, "fashion/model2": 2}
    runs = [(name, run) for name, experiment in plan.every_model.items()
            for run in experiment.runs]
    # one sampling job per run (chains_per_job: all), one per chain with chains_per_job: 1
    assert sum(len(plan.run_blocks(*run)) for run in runs) == 42
    per_chain = plan_of({**load_config([ROOT / "config/config.yaml"]), "chains_per_job": 1})
    assert sum(len(per_chain.run_blocks(*run)) for run in runs) == (2 + 6 + 6) * 4 + (2 + 26) * 2
    assert plan.trained == list(plan.every_model) and plan.pretrained == []


def test_quoted_settings_are_the_numbers_of_data_inputs_and_sampling(plan):
    quoted = quoted_settings(plan)
    assert quoted["modarith"]["modulus"] == 53 and quoted["modarith"]["per_task"] == 500
    assert quoted["modarith"]["num_trajectory_checkpoints"] == 5
    assert (quoted["digits"]["gamma_min"], quoted["digits"]["gamma_max"]) == (10, 1000)
    assert quoted["digits"]["label_noise"] == 0.1 and "split" not in quoted["digits"]
    assert "knn_k" not in quoted["digits"]


def test_an_unknown_experiment_is_named(plan):
    with pytest.raises(ConfigError, match=r"no experiment 'mnist'.*modarith, modarith-control"):
        plan.experiment("mnist")


def test_the_replicates_differ_in_initialization_and_order_only(plan):
    assert plan.models("digits") == ["digits", "digits/model1", "digits/model2"]
    assert plan.models("modarith") == ["modarith"]
    assert list(plan.replicates) == ["digits/model1", "digits/model2", "fashion/model1",
                                     "fashion/model2"]
    digits, replicate = plan.experiment("digits"), plan.experiment("digits/model2")
    assert replicate.settings["model"]["init_seed"] == digits.settings["model"]["init_seed"] + 2
    assert (replicate.settings["training"]["shuffle_seed"]
            == digits.settings["training"]["shuffle_seed"] + 2)
    for section in ("data", "kernel_inputs", "sampling", "kernel"):
        assert replicate.settings[section] == digits.settings[section], section
    same = {"model": ("init_seed",), "training": ("shuffle_seed",)}
    for section, varied in same.items():
        assert ({k: v for k, v in replicate.settings[section].items() if k not in varied}
                == {k: v for k, v in digits.settings[section].items() if k not in varied})
    # the main runs and their readings; the γ sweep and the trajectory stay on model 0
    assert list(replicate.runs) == digits.main_runs
    assert replicate.seed_readings == digits.seed_readings
    assert replicate.experiment_readings == ["model", "diagnostics"]
    assert "trajectory_gain" in digits.headline_metrics
    assert replicate.headline_metrics == [metric for metric in digits.headline_metrics
                                          if metric != "trajectory_gain"]
    assert replicate.trains_model and "digits/model2" in plan.trained
    assert digits.runs_behind("trajectory_gain") == digits.checkpoint_runs
    assert digits.runs_behind("mislabel_roc_auc") == digits.main_runs


def test_summarize_models_is_told_the_runs_behind_each_metric(plan):
    arguments = job_params(plan, "summarize_models", {"experiment": "digits"})
    assert arguments["runs_behind"]["trajectory_gain"] == [f"checkpoint{i}" for i in range(5)]
    assert arguments["runs_behind"]["cka_half"] == plan.experiment("digits").main_runs
    assert arguments["bounds"] == {"max_rhat": 1.1, "min_median_ess": 100}
    assert ["mislabel_roc_auc", "baseline_roc_auc_loss_at_optimum"] in arguments["comparisons"]
    gate = job_params(plan, "accept_model", {"experiment": "fashion/model1"})
    assert gate == {"experiment": "fashion/model1", "allow_unconverged": False}


@pytest.mark.parametrize(("change", "message"), [
    ({"copy": {"based_on": "digits", "model_from": "digits", "models": 2}},
     r"experiments.copy.models: 2 models need an experiment that trains its own model"),
    ({"digits": {"comparisons": [["mislabel_roc_auc", "roc_auc"]]}},
     r"experiments.digits.comparisons: \['roc_auc'\] need an analysis"),
    ({"digits": {"comparisons": [["trajectory_gain", "cka_half"]]}},
     r"experiments.digits.comparisons: \['trajectory_gain'\] are read from model 0 only"),
])
def test_models_and_comparisons_are_checked(change, message):
    from losskernel.config import lay_over

    config = load_config([ROOT / "config/config.yaml"])
    config["experiments"] = lay_over(config["experiments"], change)
    with pytest.raises(ConfigError, match=message):
        Plan.from_config(config, SCHEMA, check_files=False)


def test_models_need_an_init_seed_to_vary(plan):
    """A task whose model section has no init_seed (a user's task: the built-in ones require
    it) cannot train replicates."""
    digits = plan.experiment("digits")
    model = {key: value for key, value in digits.settings["model"].items() if key != "init_seed"}
    with pytest.raises(ConfigError, match=r"experiments.digits.models: 3 models need "
                                          r"model.init_seed, .* set models: 1"):
        check_models(Experiment("digits", {**digits.settings, "model": model}))


def test_the_model_reading_is_of_trained_models_and_behind_no_run(plan):
    digits = plan.experiment("digits")
    assert digits.runs_behind("test_accuracy") == []
    assert digits.runs_behind("num_parameters") == []
    assert {"num_parameters", "train_accuracy", "test_accuracy"} <= set(digits.metrics)
    pretrained = Experiment("copy", {**digits.settings, "model_from": "digits"})
    assert "model" not in pretrained.experiment_readings


def test_the_capacity_sweep_plans_its_sizes_and_tells_its_jobs():
    config = load_config([ROOT / "config/config.yaml", ROOT / "config/sweeps/capacity.yaml"])
    plan = Plan.from_config(config, SCHEMA, check_files=False)
    sweep = plan.sweep("capacity")
    assert len(sweep["experiments"]) >= 4
    sizes = [plan.experiment(name).settings["model"] for name in sweep["experiments"]]
    widths = [(size["channels"][0], size["hidden"]) for size in sizes]
    assert widths == sorted(widths) and widths[-1][0] / widths[0][0] >= 4  # ≥ 16× the weights
    models = [plan.experiment(name).settings["models"] for name in sweep["experiments"]]
    assert models[0] >= 3 and models[-1] >= 3
    arguments = job_params(plan, "summarize_sweep", {"sweep": "capacity"})
    assert arguments["experiments"] == sweep["experiments"]
    assert arguments["x"] == "num_parameters" and arguments["label"] == "test_accuracy"
    assert job_params(plan, "plot_sweep", {"sweep": "capacity"}) == {"sweep": "capacity"}
    with pytest.raises(KeyError, match=r"no sweep 'size' in the config .* its sweeps are "
                                       r"capacity"):
        plan.sweep("size")


@pytest.mark.parametrize(("sweep", "message"), [
    ({"experiments": ["digits", "digit"], "panels": {"a": ["cka_half"]}},
     r"sweeps.bad.experiments: \['digit'\] are not experiments of the config"),
    ({"experiments": ["digits", "fashion"], "panels": {"a": ["cka_half"]}},
     r"sweeps.bad: \['num_parameters', 'test_accuracy'\] are not headline rows of digits; add "
     r"them to experiments.digits.headline_metrics"),
])
def test_a_sweep_is_checked_against_its_experiments_headlines(sweep, message):
    config = load_config([ROOT / "config/config.yaml"])
    config["sweeps"] = {"bad": sweep}
    with pytest.raises(ConfigError, match=message):
        Plan.from_config(config, SCHEMA, check_files=False)


def test_experiments_whose_macros_would_collide_are_refused():
    """The paper's macro names keep letters only: fashion-c2 and fashion-c4 would both give
    \\lkFashionCDepthLift, and latex_macros would refuse after every job had run."""
    from losskernel.config import lay_over

    config = load_config([ROOT / "config/config.yaml"])
    config["experiments"] = lay_over(config["experiments"], {
        "fashion-c2": {"based_on": "fashion"}, "fashion-c4": {"based_on": "fashion"}})
    with pytest.raises(ConfigError, match=r"experiments.fashion-c4: its headline row "
                                          r"'hierarchy_lift' and the row 'fashion-c2 "
                                          r"hierarchy_lift' would both be the macro "
                                          r"\\lkFashionCHierarchyLift"):
        Plan.from_config(config, SCHEMA, check_files=False)
