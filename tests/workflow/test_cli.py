"""Every rule as a `losskernel` command: run in a copy of the tiny config's finished run, each
command rewrites its rule's files with the same content (the provenance record apart)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from PIL import Image

from losskernel import cli, dag
from losskernel.config import load_config
from losskernel.job import Job
from losskernel.plan import Plan
from losskernel.provenance import RECORD_KEYS

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [str(ROOT / "config/config.yaml"), str(ROOT / "tests/smoke/overrides.yaml")]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
PLAN = Plan.from_config(load_config(CONFIGS), SCHEMA, check_files=False)  # no data needed
JOBS = {}
for _job in dag.jobs_for(PLAN, dag.targets(PLAN)):
    JOBS.setdefault(_job.rule, _job)  # the first job of every rule of the tiny DAG


def losskernel(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "losskernel.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def options(job: Job) -> list[str]:
    return [part for name, value in job.wildcards.items() for part in (f"--{name}", value)]


def assert_same_content(made: Path, expected: Path) -> None:
    """The two files hold the same data; their provenance records may differ."""
    if made.suffix == ".nc":
        with xr.open_dataset(made) as a, xr.open_dataset(expected) as b:
            for dataset in (a, b):
                dataset.attrs = {k: v for k, v in dataset.attrs.items() if k not in RECORD_KEYS}
            xr.testing.assert_identical(a.load(), b.load())
    elif made.suffix == ".tsv":
        read = [pd.read_csv(path, sep="\t", comment="#") for path in (made, expected)]
        pd.testing.assert_frame_equal(*read)
    elif made.suffix == ".png":
        with Image.open(made) as a, Image.open(expected) as b:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    elif made.suffix == ".pt":
        a, b = (torch.load(path, weights_only=False) for path in (made, expected))
        assert a.keys() == b.keys()
        for key in a.keys() - {"provenance"}:
            if isinstance(a[key], dict) and key in ("state_dict", "checkpoints"):
                assert repr(a[key].keys()) == repr(b[key].keys())
                torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
            else:
                assert a[key] == b[key], key
    elif made.suffix == ".html":  # the rows; its provenance comments and footer may differ
        def table(path):
            text = path.read_text()
            return text[text.index("<table"):text.index("</table>")]

        assert table(made) == table(expected)
    else:
        def body(path):
            return [line for line in path.read_text().splitlines() if not line.startswith("%")]

        assert body(made) == body(expected)


@pytest.fixture(scope="module")
def copy_of_the_run(smoke_run, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("cli")
    for part in ("results", "paper"):
        shutil.copytree(smoke_run.work / part, work / part)
    return work


@pytest.mark.slow
@pytest.mark.parametrize("rule", sorted(JOBS))
def test_the_command_writes_what_its_rule_wrote(rule, smoke_run, copy_of_the_run):
    job = JOBS[rule]
    result = losskernel(rule, *options(job), "--config", *CONFIGS, "--schema", SCHEMA,
                        "--directory", str(copy_of_the_run), "--force")
    assert result.returncode == 0, result.stderr[-3000:]
    for path in job.outputs.values():
        assert f"wrote {path}" in result.stdout
        assert_same_content(copy_of_the_run / path, smoke_run.work / path)
    made = copy_of_the_run / next(iter(job.outputs.values()))
    if made.suffix == ".tsv":  # the record names the command, not the rule
        assert f"# rule: cli:{rule}" in made.read_text()


def test_every_rule_of_the_tiny_dag_is_a_command():
    # no pretrained model here; the calibration is not part of `all` (test_calibrate)
    assert set(JOBS) == set(dag.rules(PLAN)) - {"import_model", "calibration_point",
                                                "calibrate_experiment"}
    assert set(JOBS) <= set(cli.rule_names(["--config", *CONFIGS]))


def test_the_commands_the_readme_shows_exist():
    readme = (ROOT / "README.md").read_text()
    shown = {command for found in re.findall(r"bin/losskernel ([\w-]+)|^ *losskernel ([\w-]+)",
                                             readme, re.M) for command in found if command}
    commands = set(cli.rule_names([])) | {*cli.OTHER_COMMANDS, "--help"}
    assert shown and shown <= commands, shown - commands


def test_a_missing_input_names_the_command_that_makes_it(tmp_path, capsys):
    code = cli.main(["compute_kernel", "--experiment", "digits", "--run", "gamma30",
                     "--config", *CONFIGS, "--schema", SCHEMA,
                     "--directory", str(tmp_path)])
    assert code == 2
    error = capsys.readouterr().err
    assert "input results/digits/gamma30/traces.nc does not exist" in error
    assert "losskernel merge_chains --experiment digits --run gamma30" in error


def test_an_existing_output_is_kept_without_force(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    (tmp_path / "results/tables").mkdir(parents=True)
    (tmp_path / "results/tables/headline.tsv").write_text("keep me\n")
    for experiment in PLAN.experiments:
        (tmp_path / f"results/{experiment}").mkdir()
        (tmp_path / f"results/{experiment}/headline.tsv").write_text("x\n")
        (tmp_path / f"results/{experiment}/checks.tsv").write_text("x\n")
    code = cli.main(["headline_table", "--config", *CONFIGS, "--schema", SCHEMA,
                     "--directory", str(tmp_path)])
    assert code == 2 and "exists already; pass --force" in capsys.readouterr().err
    assert (tmp_path / "results/tables/headline.tsv").read_text() == "keep me\n"


def test_an_unknown_run_or_output_is_named(tmp_path, capsys):
    common = ["--config", *CONFIGS, "--schema", SCHEMA, "--directory", str(tmp_path)]
    assert cli.main(["merge_chains", "--experiment", "digits", "--run", "gamma7", *common]) == 2
    assert "no run 'gamma7'" in capsys.readouterr().err
    assert cli.main(["merge_chains", "--experiment", "digits", "--run", "seed0",
                     "--output", "trace=x.nc", *common]) == 2
    assert "NAME one of this rule's outputs: traces" in capsys.readouterr().err


def test_jobs_lists_every_job_as_a_command(capsys):
    assert cli.main(["jobs", "--experiment", "modarith-control", "--config", *CONFIGS,
                     "--schema", SCHEMA]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "losskernel train_model --experiment modarith-control"
    assert "losskernel sample_chain --experiment modarith-control --run seed1 --chain 0-1" in lines
    assert lines[-1] == "losskernel plot_diagnostics --experiment modarith-control"
    # train; per seed its 2 chains in one job, their merge, K and R in one job, the separation
    # and the diagnostics; summary, UMAP, figures, the experiment's diagnostics and their
    # figure, the checks
    assert len(lines) == 1 + 2 * (1 + 1 + 1 + 1 + 1) + 6


@pytest.mark.slow
def test_calibrate_runs_what_changed_through_snakemake_and_names_the_verdict(copy_of_the_run,
                                                                           tmp_path):
    """`losskernel calibrate` on the tiny digits model: ε = 0.001 and a diverging ε = 10 ×
    (nβ = 0, 50), each point a short run of 2 chains × 20 draws in one process; every setting
    gets a status and the reason, the terminal the verdict. Snakemake decides what runs: a
    second call runs nothing, a step size added to the grid runs its points only, and a
    retrained model reruns every point."""
    def calibrate(*overrides: Path) -> subprocess.CompletedProcess:
        return losskernel("calibrate", "--experiment", "digits", "--config", *CONFIGS,
                          *map(str, overrides), "--schema", SCHEMA,
                          "--directory", str(copy_of_the_run))

    def points() -> dict[str, int]:
        """Each calibration point's file and when it was written."""
        return {path.stem: path.stat().st_mtime_ns
                for path in (copy_of_the_run / "results/digits/calibration").glob("*.tsv")}

    model = (copy_of_the_run / "results/digits/model.pt").stat().st_mtime_ns
    result = calibrate()
    assert result.returncode == 0, result.stderr[-3000:]
    assert (copy_of_the_run / "results/digits/model.pt").stat().st_mtime_ns == model
    first = points()
    assert sorted(first) == ["eps0.001-nbeta0-gamma100", "eps0.001-nbeta50-gamma100",
                             "eps10-nbeta0-gamma100", "eps10-nbeta50-gamma100"]
    table = pd.read_csv(copy_of_the_run / "results/digits/calibration.tsv", sep="\t",
                        comment="#").set_index(["step_size", "nbeta"])
    assert sorted(table.index) == [(1e-3, 0), (1e-3, 50), (10, 0), (10, 50)]
    assert list(table.loc[[(1e-3, 0), (10, 0)], "status"]) == ["control", "control"]
    # ε·γ = 1000: the sampler blows up, caught and recorded
    assert tuple(table.loc[(10, 50), ["status", "reason"]]) == ("fail", "diverged")
    assert table.loc[(1e-3, 50), "status"] in ("pass", "fail")
    assert table.loc[(1e-3, 50), "configured"] and not table.loc[(10, 50), "configured"]
    assert "calibration of digits:" in result.stdout
    assert "  step_size 10, nbeta 50, localization 100: fail (diverged)" in result.stdout
    assert "configured: step_size 0.001" in result.stdout
    assert (copy_of_the_run / "results/figures/digits/calibration.png").stat().st_size > 0

    again = calibrate()
    assert again.returncode == 0 and points() == first  # every point is done: nothing reruns
    assert "calibration of digits:" in again.stdout

    wider = tmp_path / "wider.yaml"  # laid over the smoke config's grid, key by key
    wider.write_text("experiments:\n  digits:\n    analysis:\n"
                     "      calibration: {step_sizes: [1.0e-3, 10.0, 3.0e-3]}\n")
    widened = calibrate(wider)
    assert widened.returncode == 0, widened.stderr[-3000:]
    after = points()
    assert {point for point, written in after.items() if first.get(point) != written} == {
        "eps0.003-nbeta0-gamma100", "eps0.003-nbeta50-gamma100"}
    assert "  step_size 0.003, nbeta 50, localization 100: " in widened.stdout

    retrained = losskernel("train_model", "--experiment", "digits", "--config", *CONFIGS,
                           "--schema", SCHEMA, "--directory", str(copy_of_the_run), "--force")
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    assert calibrate(wider).returncode == 0
    assert all(written != after[point] for point, written in points().items())
