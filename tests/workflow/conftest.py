"""The tiny config's whole DAG, run once per session and shared by the tests that read it."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.needs import require

from losskernel.job import Job

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ["--configfile", str(ROOT / "config/config.yaml"),
           str(ROOT / "tests/smoke/overrides.yaml")]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
PLANS_WITHOUT_FASHION = ("test_custom_task", "test_imagenet_workflow")


RUN_JOB = """\
import json
import sys

from losskernel.job import Job
from losskernel.pipeline import run_step

given = json.loads(open(sys.argv[1]).read())
run_step(Job(**given["job"]), given["record"])
"""
"""A job, from a JSON file, in a process of its own, as a rule's script runs it."""


def own_process(job: Job, record: dict, directory: Path) -> list[str]:
    """The command that runs ``job``'s step with ``record`` in a process of its own, without
    Snakemake (a test can then set what no rule sets, such as how often a chain saves, and kill
    it); its script and JSON go to ``directory``. The job's paths are relative to the working
    directory the command is given."""
    (directory / "job.json").write_text(json.dumps({"job": dataclasses.asdict(job),
                                                    "record": record}))
    (directory / "run_job.py").write_text(RUN_JOB)
    return [sys.executable, str(directory / "run_job.py"), str(directory / "job.json")]


def snakemake(*args: str, cwd: Path = ROOT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1800, **kwargs)


def summary(directory: Path, *args: str) -> list[dict[str, str]]:
    """Snakemake's summary of the DAG in ``directory``: a row per output file, by column
    (output_file, date, rule, log-file(s), status, plan), read from its table, not its text."""
    result = snakemake("--summary", "--directory", str(directory), *args)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("output_file\t")):]
    return list(csv.DictReader(table, delimiter="\t"))


@dataclass(frozen=True)
class SmokeRun:
    """A finished run of the tiny config: its directory, snakemake's output, and the number of
    benchmark files per rule right after the run (later tests add targets such as the paper)."""

    work: Path
    run: subprocess.CompletedProcess
    benchmarks: dict[str, int]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here runs Snakemake on the workflow (``workflow``), so ``-m "not workflow"``
    is the unit tests alone; one that reads the tiny config's run runs the workflow: it is
    slow, marked or not, so ``-m "not slow"`` never starts it."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.workflow)
        if "smoke_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def fashion_mnist(request) -> None:
    """The default config's fashion experiment reads Debian's Fashion-MNIST (its dry run checks
    the files), so the tests that plan it skip without the package, naming it; in CI they fail.
    The tests of a custom task and of the ImageNet branch leave fashion out."""
    if request.module.__name__.rsplit(".", 1)[-1] not in PLANS_WITHOUT_FASHION:
        require("fashion_mnist")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> SmokeRun:
    """The whole DAG of the tiny config (tests/smoke/overrides.yaml over config/config.yaml)
    run once on 2 cores, shared by the tests that read its results."""
    work = tmp_path_factory.mktemp("smoke")
    run = snakemake("--directory", str(work), *CONFIGS, "--cores", "2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    benchmarks = {rule.name: len(list(rule.rglob("*.tsv")))
                  for rule in (work / "results/benchmarks").iterdir()}
    return SmokeRun(work, run, benchmarks)
