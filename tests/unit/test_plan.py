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
    assert list(digits.runs) == ["seed0", "seed1", "seed2", "gamma10", "gamma30", "gamma100",
                                 "gamma300", "gamma1000", *(f"checkpoint{i}" for i in range(6))]
    gamma = digits.run("gamma300")
    assert (gamma.seed, gamma.sampling["localization"], gamma.checkpoint) == (0, 300, None)
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
    assert digits.run("gamma100").seed == 7


def test_readings_metrics_and_figures(plan):
    modarith, digits = plan.experiment("modarith"), plan.experiment("digits")
    assert modarith.seed_readings == ["separation"]
    assert modarith.experiment_readings == ["trajectory"]
    assert digits.seed_readings == ["mislabels", "convergence"]
    assert "cross_task_z" in modarith.metrics and "mislabel_roc_auc" in digits.metrics
    assert dag.figures(plan, "modarith-control") == [
        f"results/figures/modarith-control/{name}.png"
        for name in ("kernel_heatmap", "kernel_distributions", "umap", "roc")]
    assert len(dag.targets(plan)) == 2 + 6 + 4 + 8 + 11


def test_a_job_has_its_files_and_arguments(plan):
    job = dag.job(plan, "sample_chain", {"experiment": "digits", "run": "checkpoint2",
                                         "chain": "1"})
    assert job.inputs == {"model": "results/digits/checkpoints.pt"}
    assert job.outputs == {"traces": "results/digits/checkpoint2/chains/chain1.nc"}
    assert job.arguments["seed"] == 0 and job.arguments["chain"] == 1
    assert job.arguments["checkpoint"] == {"index": 2, "num_checkpoints": 6}
    assert job.arguments["state_dir"] == "results/digits/checkpoint2/chains"
    assert set(job.arguments["settings"]) == {"data", "kernel_inputs"}
    reading = dag.job(plan, "score_separation", {"experiment": "modarith-control", "seed": "2"})
    assert reading.step == "score_reading"
    assert reading.outputs == {"metrics": "results/modarith-control/seed2/separation.tsv",
                               "scores": "results/modarith-control/seed2/separation-scores.tsv"}
    assert reading.arguments["settings"] == {"knn_k": 20, "standard_error_batches": 10}
    with pytest.raises(KeyError, match="has 4 chains"):
        dag.job(plan, "sample_chain", {"experiment": "digits", "run": "seed0", "chain": "4"})
    with pytest.raises(KeyError, match="no rule 'sample'"):
        dag.job(plan, "sample", {})


def test_every_file_has_one_producer_and_the_jobs_of_all_are_the_dag(plan):
    assert dag.producer(plan, "results/digits/gamma30/kernel-correlation.nc") == (
        "compute_kernel", {"experiment": "digits", "run": "gamma30", "kind": "correlation"})
    assert dag.producer(plan, "results/modarith/model.pt") == (
        "train_model", {"experiment": "modarith"})
    assert dag.producer(plan, "results/nope/model.pt") is None
    jobs = dag.jobs_for(plan, dag.targets(plan))
    counts = Counter(job.rule for job in jobs)
    # 3 seeds of modarith, digits and fashion (4 chains) and of the control (2 chains);
    # checkpoints of modarith, digits and fashion and their γ (2 chains)
    main, small = 3 * 3, 3 + (6 + 6 + 5) + (5 + 4)
    assert counts["sample_chain"] == 4 * main + 2 * small
    assert counts["merge_chains"] == main + small
    assert counts["train_model"] == 4 and sum(counts.values()) == 258
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
