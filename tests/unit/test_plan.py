"""The plan of a config: runs and their settings, readings, figures, and each job's files and
arguments (losskernel.plan, losskernel.dag)."""

from collections import Counter
from pathlib import Path

import pytest

from losskernel import dag
from losskernel.config import ConfigError, load_config
from losskernel.job import paths
from losskernel.plan import Plan, quoted_settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


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
    assert list(digits.runs) == ["seed0", "seed1", "seed2", "gamma10", "gamma30", "gamma100",
                                 "gamma300", "gamma1000", "gamma100-seed5",
                                 *(f"checkpoint{i}" for i in range(6))]
    gamma = digits.run("gamma300")
    assert (gamma.seed, gamma.sampling["localization"], gamma.checkpoint) == (3, 300, None)
    replica = digits.run("gamma100-seed5")
    assert replica.seed == 5 and replica.sampling == digits.run("gamma100").sampling
    assert gamma.sampling["num_chains"] == 2 and digits.run("seed0").sampling["num_chains"] == 4
    assert "seeds" not in gamma.sampling  # a new seed must not rerun this run
    checkpoint = digits.run("checkpoint4")
    assert checkpoint.checkpoint == {"index": 4, "num_checkpoints": 6}
    assert checkpoint.sampling["num_draws"] == 200  # the trajectory's override
    assert checkpoint.sampling["localization"] == 100
    assert list(plan.experiment("modarith-control").runs) == ["seed0", "seed1", "seed2"]
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
    assert dag.producer(plan_of(config), "results/digits/gamma100-seed3/traces.nc") == (
        "merge_chains", {"experiment": "digits", "run": "gamma100-seed3"})


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
    targets = dag.calibration_targets(plan, ["digits"])
    assert targets == ["results/digits/calibration.tsv", "results/figures/digits/calibration.png"]
    jobs = dag.jobs_for(plan, targets)
    assert Counter(job.rule for job in jobs) == {
        "train_model": 1, "calibration_point": 12, "calibrate_experiment": 1}


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
    assert modarith.experiment_readings == ["trajectory", "diagnostics"]
    assert digits.seed_readings == ["mislabels", "convergence"]
    assert "cross_task_z" in modarith.metrics and "mislabel_roc_auc" in digits.metrics
    assert dag.figures(plan, "modarith-control") == [
        f"results/figures/modarith-control/{name}.png"
        for name in ("kernel_heatmap", "kernel_distributions", "umap", "roc", "diagnostics")]
    assert len(dag.targets(plan)) == 4 + 2 + 7 + 5 + 9 + 12  # checks, headline, macros, figures


def test_a_job_has_its_files_and_arguments(plan):
    job = dag.job(plan, "sample_chain", {"experiment": "digits", "run": "checkpoint2",
                                         "chain": "0-1"})
    assert job.inputs == {"model": "results/digits/checkpoints.pt"}
    assert job.outputs == {"traces": "results/digits/checkpoint2/chains/chain0-1.nc"}
    assert job.arguments["seed"] == 0 and job.arguments["chains"] == [0, 1]
    assert job.arguments["checkpoint"] == {"index": 2, "num_checkpoints": 6}
    assert job.arguments["state_dir"] == "results/digits/checkpoint2/chains"
    assert set(job.arguments["settings"]) == {"data", "kernel_inputs"}
    reading = dag.job(plan, "score_separation", {"experiment": "modarith-control", "seed": "2"})
    assert reading.step == "score_reading"
    assert reading.outputs == {"metrics": "results/modarith-control/seed2/separation.tsv",
                               "scores": "results/modarith-control/seed2/separation-scores.tsv"}
    assert reading.arguments["settings"] == {"knn_k": 20, "standard_error_batches": 10}
    with pytest.raises(KeyError, match=r"in the jobs chain=0-3 \(chains_per_job: all\), not "
                                       r"chain=1"):
        dag.job(plan, "sample_chain", {"experiment": "digits", "run": "seed0", "chain": "1"})
    with pytest.raises(KeyError, match="no rule 'sample'"):
        dag.job(plan, "sample", {})


@pytest.mark.parametrize(("chains_per_job", "blocks"), [
    ("all", ["0-3"]), (1, ["0", "1", "2", "3"]), (2, ["0-1", "2-3"]), (3, ["0-2", "3"]),
    (8, ["0-3"])])
def test_chains_per_job_splits_a_run_into_blocks_of_chains(chains_per_job, blocks):
    config = load_config([ROOT / "config/config.yaml"])
    plan = plan_of({**config, "chains_per_job": chains_per_job})
    assert [dag.block_name(block) for block in
            dag.run_blocks(plan, plan.experiment("digits"), "seed0")] == blocks
    merge = dag.job(plan, "merge_chains", {"experiment": "digits", "run": "seed0"})
    assert merge.inputs["chains"] == [f"results/digits/seed0/chains/chain{block}.nc"
                                      for block in blocks]
    first = dag.job(plan, "sample_chain", {"experiment": "digits", "run": "seed0",
                                           "chain": blocks[0]})
    assert first.arguments["chains"] == list(dag.chain_blocks(4, chains_per_job)[0])


def test_every_file_has_one_producer_and_the_jobs_of_all_are_the_dag(plan):
    assert dag.producer(plan, "results/digits/gamma30/kernel-correlation.nc") == (
        "compute_kernel", {"experiment": "digits", "run": "gamma30"})
    assert dag.producer(plan, "results/modarith/model.pt") == (
        "train_model", {"experiment": "modarith"})
    assert dag.producer(plan, "results/nope/model.pt") is None
    jobs = dag.jobs_for(plan, dag.targets(plan))
    counts = Counter(job.rule for job in jobs)
    # 3 seeds of modarith, digits and fashion (4 chains) and of the control (2 chains);
    # checkpoints of modarith, digits and fashion and their γ with its replica (2 chains)
    main, small = 3 * 3, 3 + (6 + 6 + 5) + (5 + 1 + 4 + 1)
    # one sampling job per run (chains_per_job: all)
    assert counts["sample_chain"] == counts["merge_chains"] == main + small
    assert counts["diagnose_run"] == main + small
    assert counts["diagnostics"] == counts["plot_diagnostics"] == 4
    assert counts["train_model"] == counts["check_experiment"] == 4
    assert counts["compute_kernel"] == main + small  # K and R in one job
    assert sum(counts.values()) == 230  # 328 with a job per chain and per kernel
    made = {path for job in jobs for path in job.outputs.values()}
    for job in jobs:  # every job reads only what an earlier job made
        assert set(paths(job.inputs)) <= made


def test_quoted_settings_are_the_numbers_of_data_inputs_and_sampling(plan):
    quoted = quoted_settings(plan)
    assert quoted["modarith"]["modulus"] == 53 and quoted["modarith"]["per_task"] == 500
    assert quoted["modarith"]["num_trajectory_checkpoints"] == 6
    assert (quoted["digits"]["gamma_min"], quoted["digits"]["gamma_max"]) == (10, 1000)
    assert quoted["digits"]["label_noise"] == 0.1 and "split" not in quoted["digits"]
    assert "knn_k" not in quoted["digits"]


def test_an_unknown_experiment_is_named(plan):
    with pytest.raises(ConfigError, match=r"no experiment 'mnist'.*modarith, modarith-control"):
        plan.experiment("mnist")
