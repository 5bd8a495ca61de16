"""The workflow as a user runs it: lint, dry runs, config errors, the whole DAG on a tiny config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "config/config.yaml"
SMOKE = ROOT / "tests/smoke/overrides.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]


def snakemake(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1800)


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


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_dry_run_of_the_default_config_plans_every_stage(tmp_path):
    result = snakemake("--directory", str(tmp_path), "--configfile", str(DEFAULT), "-n")
    assert result.returncode == 0, result.stderr
    jobs = planned_jobs(result)
    assert jobs["train_model"] == 2
    assert jobs["sample_traces"] == 6  # 2 experiments x 3 seeds
    assert jobs["plot_experiment"] == 2 and jobs["paper_macros"] == 1


def test_sweep_reuses_trained_models(tmp_path):
    result = snakemake("--directory", str(tmp_path), "--configfile", str(DEFAULT),
                       str(ROOT / "config/sweeps/modarith.yaml"), "-n")
    assert result.returncode == 0, result.stderr
    jobs = planned_jobs(result)
    assert jobs["sample_traces"] == 7 * 3
    assert jobs["train_model"] == 5  # the two gamma experiments sample around modarith's model


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
def test_the_whole_dag_runs_on_a_tiny_config_and_reruns_only_what_changed(tmp_path):
    configs = ["--configfile", str(DEFAULT), str(SMOKE)]
    run = snakemake("--directory", str(tmp_path), *configs, "--cores", "2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    for experiment in ("modarith", "modarith-control"):
        for figure in ("kernel_heatmap", "kernel_distributions", "umap", "roc"):
            assert (tmp_path / f"results/figures/{experiment}/{figure}.png").stat().st_size > 0
    headline = pd.read_csv(tmp_path / "results/tables/headline.tsv", sep="\t", comment="#")
    assert list(headline.columns) == ["experiment", "metric", "value", "spread", "n", "source"]
    assert set(zip(headline["experiment"], headline["metric"], strict=True)) == {
        ("modarith", m) for m in ("roc_auc", "roc_auc_all_edges", "roc_auc_pairwise",
                                  "within_task_mean_R", "cross_task_mean_R")
    } | {("modarith-control", "cross_task_z")}
    assert (headline["n"] == 2).all()
    assert r"\lkModarithControlCrossTaskZ" in (tmp_path / "paper/generated/macros.tex").read_text()

    again = snakemake("--directory", str(tmp_path), *configs, "-n")
    assert again.returncode == 0 and planned_jobs(again) == {}, again.stdout

    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(
        {"experiments": {"modarith": {"sampling": {"step_size": 1.0e-4}}}}))
    rerun = snakemake("--directory", str(tmp_path), *configs, str(changed), "-n")
    jobs = planned_jobs(rerun)
    assert jobs.get("sample_traces") == 2  # both seeds of modarith, not the control
    assert "train_model" not in jobs

