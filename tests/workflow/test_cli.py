"""Each rule's own script, run again by Snakemake in a copy of the tiny config's finished run,
rewrites its rule's files with the same content (the provenance record apart); the
`losskernel` commands; `losskernel calibrate`, which hands the calibration to Snakemake."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from PIL import Image
from tests.workflow.conftest import CONFIGS as SNAKEMAKE_CONFIGS
from tests.workflow.conftest import snakemake, summary

from losskernel import cli
from losskernel.config import load_config
from losskernel.params import PARAMS
from losskernel.plan import Plan
from losskernel.provenance import RECORD_KEYS

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [str(ROOT / "config/config.yaml"), str(ROOT / "tests/smoke/overrides.yaml")]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
PLAN = Plan.from_config(load_config(CONFIGS), SCHEMA, check_files=False)  # no data needed
RULES = sorted({*PARAMS, *PLAN.declarations()} - {
    # no pretrained model here; the calibration is not part of `all` (test_calibrate); the
    # tiny config has no sweep (test_sweep_workflow)
    "import_model", "calibration_point", "calibrate_experiment", "summarize_sweep",
    "plot_sweep"})
"""Every rule of the tiny config's target `all` but its config record (rule run_config)."""


def losskernel(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "losskernel.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


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
    elif made.suffix == ".zip":  # a crate: the files it holds (its metadata has the times)
        names = [sorted(zipfile.ZipFile(path).namelist()) for path in (made, expected)]
        assert names[0] == names[1]
    elif made.name == "crate-preview.html":  # the crate's entities, but for the run's directory
        def entities(path):
            run = path.parents[1].as_uri()
            return sorted(link.replace(run, "") for link in re.findall(
                r'class="data-entity-link" href="([^"]+)"', path.read_text()))

        assert entities(made) == entities(expected)
    elif made.suffix == ".html":  # the rows; its provenance comments and footer may differ
        def table(path):
            text = path.read_text()
            return text[text.index("<table"):text.index("</table>")]

        assert table(made) == table(expected)
    else:
        def body(path):
            return [line for line in path.read_text().splitlines() if not line.startswith("%")]

        assert body(made) == body(expected)


def copy_run(smoke_run, work: Path) -> Path:
    """The tiny run's results and paper copied into ``work``, modification times kept."""
    for part in ("results", "paper"):
        shutil.copytree(smoke_run.work / part, work / part)
    return work


@pytest.fixture(scope="module")
def copy_of_the_run(smoke_run, tmp_path_factory) -> Path:
    return copy_run(smoke_run, tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def first_outputs(smoke_run) -> dict[str, str]:
    """The first output file of every rule of the tiny run, from Snakemake's own summary (its
    machine-readable table: output file, date, rule, ...)."""
    firsts: dict[str, str] = {}
    for row in summary(smoke_run.work, *SNAKEMAKE_CONFIGS):
        firsts.setdefault(row["rule"], row["output_file"])
    return firsts


def test_every_rule_of_the_tiny_run_is_one_the_test_reruns(first_outputs):
    assert set(first_outputs) == {*RULES, "run_config"}


@pytest.mark.slow
@pytest.mark.parametrize("rule", RULES)
def test_the_rule_script_rewrites_what_it_wrote(rule, smoke_run, copy_of_the_run,
                                                first_outputs):
    """`snakemake --force FILE` reruns the one job of FILE (its inputs are there): the files
    it rewrites are its rule's, with the same content."""
    before = {path: path.stat().st_mtime_ns for part in ("results", "paper")
              for path in (copy_of_the_run / part).rglob("*") if path.is_file()}
    target = first_outputs[rule]
    result = snakemake(target, "--force", "--cores", "1", "--directory", str(copy_of_the_run),
                       *SNAKEMAKE_CONFIGS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"rule {rule}:" in result.stdout + result.stderr
    rewritten = [path for path, written in before.items() if path.stat().st_mtime_ns != written]
    made = [path for path in rewritten
            if "logs" not in path.parts and "benchmarks" not in path.parts]
    assert copy_of_the_run / target in made
    for path in made:
        assert_same_content(path, smoke_run.work / path.relative_to(copy_of_the_run))
    if target.endswith(".tsv"):  # the record names the rule that made it
        assert f"# rule: {rule}\n" in (copy_of_the_run / target).read_text()


def test_the_commands_the_readme_shows_exist():
    readme = (ROOT / "README.md").read_text()
    shown = {command for found in re.findall(r"bin/losskernel ([\w-]+)|^ *losskernel ([\w-]+)",
                                             readme, re.M) for command in found if command}
    parser = cli.build_parser()
    commands = next(action.choices for action in parser._actions
                    if isinstance(action, argparse._SubParsersAction))
    assert shown and shown <= {*commands, "--help"}, shown - {*commands, "--help"}


def test_an_unknown_run_is_named_before_any_job(tmp_path):
    """A file of a run the config has not got: the dry run stops, naming the runs there are."""
    result = snakemake("-n", "results/digits/gamma7/traces.nc", "--directory", str(tmp_path),
                       *SNAKEMAKE_CONFIGS)
    assert result.returncode != 0
    assert "experiment digits has no run 'gamma7': its runs are seed0, seed1, gamma30" in (
        result.stdout + result.stderr)


@pytest.mark.slow
def test_calibrate_runs_what_changed_through_snakemake_and_names_the_verdict(smoke_run,
                                                                           tmp_path):
    """`losskernel calibrate` on the tiny digits model (the config's only experiment here):
    ε = 0.001 and a diverging ε = 10 × (nβ = 0, 50), each point a short run of 2 chains × 20
    draws in one process; every setting gets a status and the reason, the terminal the
    verdict. Snakemake decides what runs: a second call runs no point, a step size added to the
    grid runs its points only, and a retrained model reruns every point."""
    # a copy of its own: the rule reruns above rewrite files upstream of the model (a data
    # manifest), which would retrain it
    copy_of_the_run = copy_run(smoke_run, tmp_path / "run")
    digits_only = tmp_path / "digits-only.yaml"
    digits_only.write_text("experiments: {modarith: null, modarith-control: null, "
                           "fashion: null}\n")

    def calibrate(*overrides: Path) -> subprocess.CompletedProcess:
        return losskernel("calibrate", "--config", *CONFIGS, str(digits_only),
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
    assert again.returncode == 0 and points() == first  # every point is done: none reruns
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

    retrained = snakemake("results/digits/model.pt", "--force", "--cores", "1", "--directory",
                          str(copy_of_the_run), *SNAKEMAKE_CONFIGS, str(digits_only))
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    assert calibrate(wider).returncode == 0
    assert all(written != after[point] for point, written in points().items())
