"""The `check` rule on the tiny config's finished run: it passes there, and fails, naming the
experiment, the check and the fix, on a planted NaN, a planted failing control and an
unconverged model (which the gate between training and sampling stops before any sampling
job). Each fault is planted in a copy of the run, upstream of the check, and
Snakemake reruns what depends on it (a changed file by its time; a changed setting is forced,
as the copy has no record of the settings the first run used)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import yaml
from tests.workflow.conftest import CONFIGS, snakemake

from losskernel.method.traces import load_traces, save_traces
from losskernel.pipeline.io import read_tsv

ROOT = Path(__file__).resolve().parents[2]


def check(work: Path, experiment: str, extra: Path | None = None,
          forcerun: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Snakemake makes the experiment's checks table in ``work``, rerunning what changed and
    the jobs of the rules ``forcerun``."""
    return snakemake(f"results/{experiment}/checks.tsv", "--directory", str(work), "--cores",
                     "1", *CONFIGS, *([str(extra)] if extra else []),
                     *(["--forcerun", *forcerun] if forcerun else []))


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
    # 30 training steps do not memorize the labels: passed only because the config says so,
    # at the check and at the gate before sampling
    assert "allowed by training.allow_unconverged" in digits.loc["converged", "reason"]
    for model in ("digits", "digits/model1"):
        verdict = read_tsv(smoke_run.work / f"results/{model}/model-accepted.tsv").iloc[0]
        assert "allowed by training.allow_unconverged" in verdict["reason"]
        # each model is checked on its own
        assert read_tsv(smoke_run.work / f"results/{model}/checks.tsv")["passed"].all()


def test_a_planted_nan_fails_the_check_naming_the_metric_and_seed(smoke_run, tmp_path):
    work = copy_of(smoke_run, tmp_path, "digits")
    headline = read_tsv(work / "results/digits/model-headline.tsv")  # model 0's rows
    metric = headline.loc[headline["n"] == 2, "metric"].iloc[0]  # a per-seed headline metric
    source = next(path for path in (work / "results/digits/seed1").glob("*.tsv")
                  if metric in set(read_tsv(path).get("metric", [])))
    text = source.read_text()
    rows = [line for line in text.splitlines() if line.startswith(f"{metric}\t")]
    source.write_text(text.replace(rows[0], f"{metric}\tnan"))
    checked = check(work, "digits")  # the summary reads the newer table: it and the check rerun
    assert checked.returncode != 0
    assert "rule summarize_experiment:" in checked.stdout + checked.stderr
    summarized = read_tsv(work / "results/digits/model-headline.tsv").set_index("metric")
    assert summarized.loc[metric, "n"] == 1  # the NaN seed counts nowhere
    assert (f"digits: every_seed of {metric}: {metric} has no finite value at seeds [1] of "
            f"[0, 1]") in checked.stderr
    # Snakemake deletes a failed job's output: the checks table goes; the log keeps the reason
    assert not (work / "results/digits/checks.tsv").exists()
    assert "every_seed" in (work / "results/logs/check_experiment/digits.log").read_text()


def test_an_unconverged_model_is_not_sampled_unless_allowed(tmp_path):
    """The gate between training and sampling (rule accept_model), on a fresh tiny run of
    digits alone: 30 steps do not memorize the labels, so the run stops after training, before
    any sampling job, and keeps the model; allow_unconverged lets the same model through
    without training it again."""
    work = tmp_path / "work"
    only_digits = {"modarith": None, "modarith-control": None, "fashion": None}
    strict = overrides(tmp_path, {**only_digits, "digits": {
        "models": 1, "training": {"allow_unconverged": False}}})
    target = "results/digits/seed0/traces.nc"
    refused = snakemake(target, "--directory", str(work), "--cores", "1", *CONFIGS,
                        str(strict))
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "rule train_model:" in output and "rule sample_chain:" not in output
    assert ("digits: model refused before sampling: results/digits/model.pt did not meet its "
            "convergence target in training.max_steps = 30 steps") in output
    assert "training.allow_unconverged: true" in output
    model = work / "results/digits/model.pt"
    assert model.exists()  # the gate is its own job: Snakemake deletes only the gate's output
    assert not (work / "results/digits/model-accepted.tsv").exists()
    trained = model.read_bytes()

    allowed = overrides(tmp_path, {**only_digits, "digits": {
        "models": 1, "training": {"allow_unconverged": True}}})
    through = snakemake(target, "--directory", str(work), "--cores", "1", *CONFIGS,
                        str(allowed))
    assert through.returncode == 0, through.stderr[-3000:]
    output = through.stdout + through.stderr
    assert "rule train_model:" not in output and "rule sample_chain:" in output
    assert model.read_bytes() == trained
    verdict = read_tsv(work / "results/digits/model-accepted.tsv").iloc[0]
    assert bool(verdict["passed"]) and verdict["value"] == 0.0
    assert "allowed by training.allow_unconverged" in verdict["reason"]


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
    work = copy_of(smoke_run, tmp_path, "modarith-control", "modarith")  # modarith's model
    # bounds for runs of 2 chains x 20 draws: 5 blocks per chain give Student-t with 9 dof
    control = overrides(tmp_path, {"modarith-control": {"analysis": {
        "standard_error_batches": 5, "checks": {"positive_control": True,
                                                "max_control_entry_z2": 5}}}})

    # the readings' new settings: the separation scores, and after them the summary and check
    clean = check(work, "modarith-control", extra=control, forcerun=("score_separation",))
    assert clean.returncode == 0, clean.stderr[-3000:]
    for seed in (0, 1):
        plant_cancelling_couplings(work / f"results/modarith-control/seed{seed}/traces.nc", seed)
    planted = check(work, "modarith-control", extra=control)  # newer traces: K, R and on
    assert planted.returncode != 0
    assert "rule compute_kernel:" in planted.stdout + planted.stderr
    summary = read_tsv(work / "results/modarith-control/summary.tsv")
    z = summary[summary["metric"] == "cross_task_z"]["value"]
    assert (np.abs(z) < 3).all()  # the mean test alone would pass
    assert "modarith-control: control_entries of seed0: seed 0: mean z² over the cross-task " \
           "entries is" in planted.stderr
    assert "analysis.checks.max_control_entry_z2 = 5" in planted.stderr
