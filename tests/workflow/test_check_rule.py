"""The `check` rule on the tiny config's finished run: it passes there, and fails, naming the
experiment, the check and the fix, on a planted NaN, a planted failing control and an
unconverged model. Each fault is planted in a copy of the run, upstream of the check, and the
steps after it are rerun with the `losskernel` command line as Snakemake would."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from losskernel.method.traces import load_traces, save_traces
from losskernel.pipeline.io import read_tsv

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [str(ROOT / "config/config.yaml"), str(ROOT / "tests/smoke/overrides.yaml")]


def losskernel(work: Path, rule: str, *args: str, extra: Path | None = None
               ) -> subprocess.CompletedProcess:
    configs = [*CONFIGS, *([str(extra)] if extra else [])]
    return subprocess.run([sys.executable, "-m", "losskernel.cli", rule, "--config", *configs,
                           "--directory", str(work), "--force", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def copy_of(smoke_run, tmp_path: Path, *experiments: str) -> Path:
    work = tmp_path / "work"
    for name in experiments:
        shutil.copytree(smoke_run.work / "results" / name, work / "results" / name)
    return work


def overrides(tmp_path: Path, experiments: dict) -> Path:
    path = tmp_path / "overrides.yaml"
    path.write_text(yaml.safe_dump({"experiments": experiments}))
    return path


def test_every_check_of_the_tiny_run_passed(smoke_run):
    for name in ("modarith", "modarith-control", "digits", "fashion"):
        table = read_tsv(smoke_run.work / f"results/{name}/checks.tsv")
        assert table["passed"].all(), table[~table["passed"]].to_string()
        assert {"finite_headline", "converged", "rhat"} <= set(table["check"])
    digits = read_tsv(smoke_run.work / "results/digits/checks.tsv").set_index("check")
    # 30 training steps do not memorize the labels: passed only because the config says so
    assert "allowed by training.allow_unconverged" in digits.loc["converged", "reason"]


def test_a_planted_nan_fails_the_check_naming_the_metric_and_seed(smoke_run, tmp_path):
    work = copy_of(smoke_run, tmp_path, "digits")
    headline = read_tsv(work / "results/digits/headline.tsv")
    metric = headline.loc[headline["n"] == 2, "metric"].iloc[0]  # a per-seed headline metric
    source = next(path for path in (work / "results/digits/seed1").glob("*.tsv")
                  if metric in set(read_tsv(path).get("metric", [])))
    text = source.read_text()
    rows = [line for line in text.splitlines() if line.startswith(f"{metric}\t")]
    source.write_text(text.replace(rows[0], f"{metric}\tnan"))
    assert losskernel(work, "summarize_experiment", "--experiment", "digits").returncode == 0
    summarized = read_tsv(work / "results/digits/headline.tsv").set_index("metric")
    assert summarized.loc[metric, "n"] == 1  # the NaN seed counts nowhere
    checked = losskernel(work, "check_experiment", "--experiment", "digits")
    assert checked.returncode != 0
    assert (f"digits: every_seed of {metric}: {metric} has no finite value at seeds [1] of "
            f"[0, 1]") in checked.stderr
    table = read_tsv(work / "results/digits/checks.tsv")  # the table is kept beside the error
    assert list(table.loc[~table["passed"], "check"]) == ["every_seed"]


def test_an_unconverged_model_fails_the_check_unless_allowed(smoke_run, tmp_path):
    work = copy_of(smoke_run, tmp_path, "digits")
    strict = overrides(tmp_path, {"digits": {"training": {"allow_unconverged": False}}})
    checked = losskernel(work, "check_experiment", "--experiment", "digits", extra=strict)
    assert checked.returncode != 0
    assert ("digits: converged of results/digits/model.pt: results/digits/model.pt did not "
            "meet its convergence target in training.max_steps = 30 steps") in checked.stderr
    assert "training.allow_unconverged: true" in checked.stderr
    assert losskernel(work, "check_experiment", "--experiment", "digits").returncode == 0


def plant_cancelling_couplings(path: Path, seed: int) -> None:
    """Add to the traces a common factor shared by every addition input, by the first half of
    the division inputs and, with the opposite sign, by the second half: every entry of the
    cross-task block gets ±var f, and the block's mean stays 0."""
    traces = load_traces(path)
    loss = traces["loss"].transpose("chain", "draw", "obs_id")
    task = traces["task"].values
    division = np.flatnonzero(task == "div")
    half = len(division) // 2  # an odd one out keeps sign 0, so the halves cancel exactly
    sign = np.where(task == "add", 1.0, 0.0)
    sign[division[:half]], sign[division[half:2 * half]] = 1.0, -1.0
    factor = np.random.default_rng(seed).normal(scale=float(loss.std()), size=loss.shape[:2])
    traces["loss"] = (("chain", "draw", "obs_id"),
                      loss.values + factor[:, :, None] * sign[None, None, :])
    save_traces(traces, path)


def test_a_control_with_cancelling_couplings_fails_the_entry_test(smoke_run, tmp_path):
    work = copy_of(smoke_run, tmp_path, "modarith-control")
    # bounds for runs of 2 chains x 20 draws: 5 blocks per chain give Student-t with 9 dof
    control = overrides(tmp_path, {"modarith-control": {"analysis": {
        "standard_error_batches": 5, "checks": {"positive_control": True,
                                                "max_control_entry_z2": 5}}}})

    def rerun_readings() -> subprocess.CompletedProcess:
        for seed in ("0", "1"):
            scored = losskernel(work, "score_separation", "--experiment", "modarith-control",
                                "--seed", seed, extra=control)
            assert scored.returncode == 0, scored.stderr[-2000:]
        summarized = losskernel(work, "summarize_experiment", "--experiment",
                                "modarith-control", extra=control)
        assert summarized.returncode == 0, summarized.stderr[-2000:]
        return losskernel(work, "check_experiment", "--experiment", "modarith-control",
                          extra=control)

    clean = rerun_readings()
    assert clean.returncode == 0, clean.stderr[-3000:]
    for seed in (0, 1):
        plant_cancelling_couplings(work / f"results/modarith-control/seed{seed}/traces.nc", seed)
    planted = rerun_readings()
    assert planted.returncode != 0
    summary = read_tsv(work / "results/modarith-control/summary.tsv")
    z = summary[summary["metric"] == "cross_task_z"]["value"]
    assert (np.abs(z) < 3).all()  # the mean test alone would pass
    assert "modarith-control: control_entries of seed0: seed 0: mean z² over the cross-task " \
           "entries is" in planted.stderr
    assert "analysis.checks.max_control_entry_z2 = 5" in planted.stderr
