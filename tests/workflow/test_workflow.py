"""The workflow as a user runs it: dry runs, config errors, the whole DAG on a tiny config.
(`snakemake --lint` is in tests/unit/test_linters.py.)"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.workflow.conftest import snakemake, summary

from losskernel.plan import MODEL_METRICS
from losskernel.readings.summary import COMPARISON_COLUMNS, HEADLINE_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "config/config.yaml"
SMOKE = ROOT / "tests/smoke/overrides.yaml"


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Job counts from the 'Job stats' table of a dry run ({} when nothing is to be done)."""
    counts, in_table = {}, False
    for line in result.stdout.splitlines():
        if line.startswith("job ") and "count" in line:
            in_table = True
        elif in_table and line.strip() and not line.startswith("-"):
            name, _, count = line.rpartition(" ")
            if name.strip() == "total":
                break
            counts[name.strip()] = int(count)
    return counts


def planned_files(directory: Path, *args: str) -> dict[str, str]:
    """Every output file of the DAG with the rule that makes it (Snakemake's summary)."""
    return {row["output_file"]: row["rule"] for row in summary(directory, *args)}


def test_dry_run_of_the_default_config_plans_every_stage(tmp_path):
    result = snakemake("--directory", str(tmp_path), "--configfile", str(DEFAULT), "-n")
    assert result.returncode == 0, result.stderr
    jobs = planned_jobs(result)
    # all, a job per run (SGLD, K and R) and per model, run_config, a manifest of each data
    # source (Fashion-MNIST, WordNet, scikit-learn's digits) and the crate
    assert sum(jobs.values()) == 1 + 288 + 1 + 3 + 1
    files = planned_files(tmp_path, "--configfile", str(DEFAULT))
    assert len(files) == 480 and all(path.startswith(("results/", "paper/")) for path in files)
    assert sorted(path for path, rule in files.items() if rule == "record_data") == [
        f"results/data/{source}.tsv" for source in ("fashion-mnist", "sklearn-digits", "wordnet")]
    assert files["results/crate.zip"] == files["results/crate-preview.html"] == "crate"
    assert files["results/digits/gamma100-seed5/traces.nc"] == "merge_chains"  # the replica
    assert files["results/fashion/checkpoint4/kernel-correlation.nc"] == "compute_kernel"
    assert files["results/wordnet/fashion-mnist-hierarchy.tsv"] == "fashion_hierarchy"
    assert files["results/digits/model2/seed1/mislabels.tsv"] == "mislabel_detection"
    assert files["results/fashion/model1/model-accepted.tsv"] == "accept_model"
    assert files["results/tables/comparisons.tsv"] == "headline_table"
    assert [rule for path, rule in files.items() if "/provenance/" in path] == ["run_config"]
    # modarith, its control, and 3 models each of digits and fashion, each behind its gate
    assert jobs["train_model"] == jobs["accept_model"] == jobs["describe_model"] == 8
    assert files["results/digits/model2/model-metrics.tsv"] == "describe_model"
    # 2 seeds of 4 chains each for modarith and every model of digits and fashion, of 2 for
    # the control; trajectories of 2 chains (5 checkpoints of modarith, digits and fashion, on
    # model 0); γ sweeps of 2 chains (5 γ of digits, 4 of fashion: a sweep that changes
    # sampling settings runs its own γ = localization; and the replica of one γ, for the noise
    # ceiling)
    main, control, trajectory, sweep = 2 + 2 * 3 * 2, 2, 5 + 5 + 5, (5 + 1) + (4 + 1)
    assert jobs["merge_chains"] == main + control + trajectory + sweep
    assert jobs["sample_chain"] == jobs["merge_chains"]  # one job per run (chains_per_job)
    assert jobs["plot_experiment"] == 2 and jobs["paper_macros"] == 1
    assert jobs["mislabel_baselines"] == 3 and jobs["gamma_sweep"] == 2
    assert jobs["plot_trajectory"] == 3 and jobs["embed_umap"] == 4
    assert jobs["input_features"] == 3 and jobs["score_hierarchy"] == 3 * 2
    assert jobs["fashion_hierarchy"] == 1 and jobs["plot_figure1"] == 1
    assert jobs["diagnose_run"] == jobs["merge_chains"]  # every run is diagnosed
    # diagnostics and checks per model; figures and the headline rows per experiment
    assert jobs["diagnostics"] == jobs["check_experiment"] == 8
    assert jobs["plot_diagnostics"] == jobs["summarize_models"] == 4
    assert "calibration_point" not in jobs  # the calibration is its own target


def test_sweep_reuses_trained_models(tmp_path):
    result = snakemake("--directory", str(tmp_path), "--configfile", str(DEFAULT),
                       str(ROOT / "config/sweeps/modarith.yaml"), "-n")
    assert result.returncode == 0, result.stderr
    jobs = planned_jobs(result)
    # 7 modarith experiments x 2 seeds, modarith's 5 trajectory checkpoints, and the digits
    # and fashion experiments of the default (3 models x 2 seeds; 5 and 4 γ with a replica
    # each, 5 checkpoints each, on model 0)
    assert jobs["merge_chains"] == 7 * 2 + 5 + (3 * 2 + 6 + 5) + (3 * 2 + 5 + 5)
    assert jobs["sample_chain"] == jobs["merge_chains"]  # one job per run
    # the two gamma experiments sample around modarith's model; 3 models of digits and fashion
    assert jobs["train_model"] == 7 + 2 * 2


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"sampling": {"localization": -1}}, "experiments.modarith.sampling.localization"),
        ({"sampling": {"num_chainz": 4}}, "'num_chainz' was unexpected"),
        ({"sampling": {"num_draws": "many"}}, "experiments.modarith.sampling.num_draws"),
    ],
)
def test_invalid_config_fails_before_any_job_naming_the_key(tmp_path, override, key):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experiments": {"modarith": override}}))
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = snakemake("--directory", str(workdir), "--configfile", str(DEFAULT), str(bad),
                       "--cores", "1")
    assert result.returncode != 0
    assert key in result.stdout + result.stderr
    assert not (workdir / "results").exists()  # nothing ran


@pytest.mark.slow
def test_the_whole_dag_runs_on_a_tiny_config_and_reruns_only_what_changed(smoke_run):
    configs = ["--configfile", str(DEFAULT), str(SMOKE)]
    tmp_path, run = smoke_run.work, smoke_run.run
    # every job that ran wrote its benchmark file (benchmarks/pipeline_times.py reads them): per
    # rule as many as the run's job stats count, and no other rule; `all` runs nothing
    ran = planned_jobs(subprocess.CompletedProcess(run.args, 0, run.stdout + run.stderr))
    assert ran.pop("all") == 1 and len(ran) > 10, run.stderr[-3000:]
    assert smoke_run.benchmarks == ran

    figures = {
        "modarith": ["kernel_heatmap", "kernel_distributions", "umap", "roc", "trajectory_score",
                     "trajectory_umap"],
        "modarith-control": ["kernel_heatmap", "kernel_distributions", "umap", "roc"],
        "digits": ["mislabel_roc", "self_covariance", "umap_mislabels", "gamma_cka",
                   "gamma_lift", "convergence", "trajectory_score", "trajectory_umap"],
        "fashion": ["umap_hierarchy", "umap_hierarchy_3d", "kernel_vs_wordnet",
                    "neighbourhood_insets", "taxonomic_lift", "hierarchy_similarities",
                    "gamma_cka", "gamma_lift", "convergence", "trajectory_score",
                    "trajectory_umap"],
    }
    for experiment, names in figures.items():
        for figure in [*names, "diagnostics"]:
            assert (tmp_path / f"results/figures/{experiment}/{figure}.png").stat().st_size > 0
    headline = pd.read_csv(tmp_path / "results/tables/headline.tsv", sep="\t", comment="#")
    assert list(headline.columns) == list(HEADLINE_COLUMNS)
    configured = yaml.safe_load(DEFAULT.read_text())["experiments"]
    diagnostic = ["worst_rhat", "median_ess_bulk", "seed_to_seed_cka"]
    assert list(zip(headline["experiment"], headline["metric"], strict=True)) == [
        (name, metric) for name, settings in configured.items()
        for metric in [*settings["headline_metrics"], *diagnostic]]
    for metric in ("mislabel_roc_auc", "self_cov_ratio", "cka_half", "trajectory_gain"):
        assert ("digits", metric) in set(zip(headline["experiment"], headline["metric"],
                                             strict=True))
    single = headline["metric"].isin(["trajectory_gain", *diagnostic, *MODEL_METRICS])
    assert (headline.loc[single, "seeds"] == 1).all()
    assert headline.loc[single, "seed_spread"].isna().all()
    assert (headline.loc[~single, "seeds"] == 2).all()
    assert headline["value"].notna().all()
    # the tiny config trains 2 models of digits and fashion, 1 of modarith; the trajectory is
    # read from model 0 only
    models = headline.set_index(["experiment", "metric"])["models"]
    assert models["digits", "mislabel_roc_auc"] == models["fashion", "depth_lift"] == 2
    assert models["digits", "trajectory_gain"] == models["modarith", "roc_auc"] == 1
    spread = headline.set_index(["experiment", "metric"])["model_spread"]
    assert spread["digits", "mislabel_roc_auc"] > 0 and spread.loc["modarith"].isna().all()
    # the trajectories' 2 chains x 10 draws cannot pass the diagnostics, and the table says so
    passed = headline.set_index(["experiment", "metric"])["diagnostics_passed"]
    assert not passed["digits", "trajectory_gain"] and not passed["modarith", "trajectory_gain"]
    comparisons = pd.read_csv(tmp_path / "results/tables/comparisons.tsv", sep="\t",
                              comment="#")
    assert list(comparisons.columns) == list(COMPARISON_COLUMNS)
    assert [(row.experiment, row.kernel, row.baseline) for row in comparisons.itertuples()] == [
        (name, *pair) for name, settings in configured.items()
        for pair in settings.get("comparisons", [])]
    assert (comparisons["models"] == 2).all()
    # every model has both values, so the mean difference is the difference of the means (the
    # table keeps 6 significant digits)
    assert np.allclose(comparisons["difference"],
                       comparisons["kernel_value"] - comparisons["baseline_value"], atol=2e-5)
    macros = (tmp_path / "paper/generated/macros.tex").read_text()
    assert r"\lkModarithControlCrossTaskZ" in macros and r"\lkDigitsMislabelRocAuc" in macros
    paper = (ROOT / "paper/main.tex").read_text()
    defined = set(re.findall(r"\\newcommand\{\\(lk[A-Za-z]+)\}", macros))
    assert set(re.findall(r"\\(lk[A-Za-z]+)", paper)) <= defined  # every quoted number exists
    compared = re.findall(r"\\kerneldiff\{(lk[A-Za-z]+)\}", paper)  # and every comparison
    assert compared and all({name, f"{name}Spread", f"{name}Models", f"{name}Better"} <= defined
                            for name in compared)
    for figure in re.findall(r"\\includegraphics\[[^]]*\]\{([^}]+)\}", paper):
        assert (tmp_path / "results/figures" / figure).exists(), figure

    sweep = pd.read_csv(tmp_path / "results/digits/gamma-sweep-cka.tsv", sep="\t", comment="#")
    assert sorted(set(sweep["gamma_a"])) == [30, 100]
    ceiling = pd.read_csv(tmp_path / "results/digits/gamma-sweep-ceiling.tsv", sep="\t",
                          comment="#")
    assert list(ceiling["similarity"]) == ["K", "R", "absR"]
    assert (ceiling["gamma"] == 100).all() and (ceiling["seed_b"] == 2).all()
    assert ceiling["cka"].between(0, 1).all()
    check_diagnostics(tmp_path, run.stdout + run.stderr)
    trajectory = pd.read_csv(tmp_path / "results/digits/trajectory.tsv", sep="\t", comment="#")
    assert list(trajectory["checkpoint"]) == [0, 1, 2] and trajectory["step"].iloc[0] == 0

    again = snakemake("--directory", str(tmp_path), *configs, "-n")
    assert again.returncode == 0 and planned_jobs(again) == {}, again.stdout

    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(
        {"experiments": {"digits": {"sampling": {"step_size": 2.0e-3}}}}))
    rerun = snakemake("--directory", str(tmp_path), *configs, str(changed), "-n")
    jobs = planned_jobs(rerun)
    # both seeds of both models of digits (γ = 100 is seed0 of model 0), its 3 checkpoints,
    # γ = 30 and the replica (they inherit the step size); neither model is trained again
    assert jobs.get("merge_chains") == jobs.get("sample_chain") == 2 * 2 + 3 + 2
    assert "train_model" not in jobs and "mislabel_baselines" not in jobs

    variant = tmp_path / "variant.yaml"
    variant.write_text(yaml.safe_dump(
        {"experiments": {"modarith": {"sampling": {"step_size": 1.0e-4}}}}))
    rerun = snakemake("--directory", str(tmp_path), *configs, str(variant), "-n")
    jobs = planned_jobs(rerun)
    # modarith's 2 seeds and 3 checkpoints, and the control's 2 seeds: it is based on modarith
    assert jobs.get("merge_chains") == 2 + 3 + 2 and "train_model" not in jobs

    one_gamma = tmp_path / "one-gamma.yaml"
    one_gamma.write_text(yaml.safe_dump(
        {"experiments": {"digits": {"analysis": {"gamma_sweep": {"localizations": [30, 300]}}}}}))
    rerun = snakemake("--directory", str(tmp_path), *configs, str(one_gamma), "-n")
    jobs = planned_jobs(rerun)
    # only the new γ's run and its replica's (γ = 300 is now nearest the localization 100, so
    # it takes the sweep's seed and the replica); γ = 30 keeps its seed and its run
    assert jobs.get("sample_chain") == 1 + 1
    assert "train_model" not in jobs and "mislabel_baselines" not in jobs



def check_diagnostics(work: Path, output: str) -> None:
    """Every run of the tiny DAG is diagnosed; 20 draws are far too few, so the runs are out
    of bounds and the terminal says so, naming the run."""
    runs = pd.read_csv(work / "results/digits/diagnostics.tsv", sep="\t", comment="#")
    # γ = 100 is the main run seed0 (the sweep's 2 chains are the tiny main runs' too)
    assert list(runs["run"]) == ["seed0", "seed1", "gamma30", "gamma100-seed2",
                                 *(f"checkpoint{index}" for index in range(3))]
    assert (runs["inputs_out_of_bounds"] > 0).all()
    per_input = pd.read_csv(work / "results/digits/seed0/diagnostics.tsv", sep="\t",
                            comment="#")
    # an input whose loss never varies has no R-hat (NaN, as in ArviZ)
    assert len(per_input) == 1347 and (per_input["rhat"].dropna() >= 0.9).all()
    assert (per_input["ess_bulk"] > 0).all()
    assert "WARNING: sampling diagnostics of run digits/seed0:" in output
    assert (work / "results/figures/digits/diagnostics.png").stat().st_size > 0
    metrics = pd.read_csv(work / "results/digits/diagnostics-metrics.tsv", sep="\t",
                          comment="#").set_index("metric")["value"]
    assert metrics["worst_rhat"] == runs.set_index("run").loc[["seed0", "seed1"],
                                                               "worst_rhat"].max()
    assert 0 < metrics["seed_to_seed_cka"] <= 1
