"""A code change reruns exactly the jobs whose code changed (losskernel.fingerprint): on the tiny
config's finished run, each test edits a copy of this checkout and reads what Snakemake plans
with the copy's workflow from ``--summary``: the files it would make and their rules, and the
files whose params (the code fingerprint is one) changed, its status "params changed".
(``--list-changes params`` of Snakemake 9.27 cannot say this: it lists an output of every job,
changed or not.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.workflow.conftest import CONFIGS, ROOT, summary

from losskernel.config import load_config
from losskernel.fingerprint import job_code
from losskernel.plan import Plan
from losskernel.provenance import read_provenance

CHECKOUT = ("Snakefile", "workflow", "src", "profiles", "config", "envs", "paper")


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of this checkout's workflow and package, to edit; its files are new (no
    modification time is kept)."""
    copy = tmp_path / "checkout"
    for name in CHECKOUT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, copy_function=shutil.copy,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pdf", "generated"))
        else:
            copy.mkdir(exist_ok=True)
            shutil.copy(source, copy / name)
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path}: {old!r} found {text.count(old)} times"
    path.write_text(text.replace(old, new))


def plan(checkout: Path, work: Path, *args: str) -> tuple[dict[str, str], dict[str, str]]:
    """What Snakemake plans with ``checkout``'s workflow in ``work``: each output file it
    would make -> its rule, and of those the files whose params changed (the code
    fingerprint is a param) -> rule, from ``--summary``'s plan and status columns; but the
    crate's, which every new commit remakes, and so every copy without git."""
    rows = [row for row in summary(work, "--snakefile", str(checkout / "Snakefile"), *CONFIGS,
                                   *args)
            if row["rule"] != "crate"]  # remade by every new commit (its param), so by a copy
    pending = {row["output_file"]: row["rule"] for row in rows if row["plan"] != "no update"}
    changed = {row["output_file"]: row["rule"] for row in rows
               if row["status"] == "params changed"}
    return pending, changed


def forced(work: Path, files: dict[str, str]) -> dict[str, str]:
    """What Snakemake plans when the jobs of ``files`` are forced to rerun: those jobs and
    what depends on them, by Snakemake's own DAG (the yardstick of "what depends on them")."""
    pending, _ = plan(ROOT, work, "--forcerun", *sorted(files))
    return pending


def experiment_of(path: str) -> str | None:
    """The experiment an output file belongs to; None for the run's own tables and macros."""
    parts = Path(path).parts
    if parts[0] != "results" or parts[1] in ("tables", "provenance"):
        return None
    return parts[2] if parts[1] == "figures" else parts[1]


def test_an_unchanged_copy_plans_nothing(smoke_run, checkout):
    """The control: the fingerprint names modules and scripts, not where the checkout is, and
    a copy's new modification times rerun nothing (the profile leaves the mtime of scripts
    out of the rerun triggers). The crate alone is remade, as after every new commit: its
    param names the checkout's commit, and the copy has no git (``plan`` leaves it out)."""
    assert plan(checkout, smoke_run.work) == ({}, {})
    rows = summary(smoke_run.work, "--snakefile", str(checkout / "Snakefile"), *CONFIGS)
    assert {(row["output_file"], row["rule"]) for row in rows if row["plan"] != "no update"} == {
        ("results/crate.zip", "crate"), ("results/crate-preview.html", "crate")}


def test_comment_docstring_and_layout_edits_plan_nothing(smoke_run, checkout):
    separation = checkout / "src/losskernel/readings/separation.py"
    edit(separation, "def roc_auc_score(", "# a new comment\ndef roc_auc_score(")
    edit(separation, "    return float(sklearn_roc_auc_score(positive, scores))",
         "    return float(\n        sklearn_roc_auc_score(positive, scores)  # why\n    )")
    first_docstring_line = separation.read_text().split('"""')[1].splitlines()[0]
    edit(separation, first_docstring_line, first_docstring_line + " Reworded.")
    script = checkout / "workflow/scripts/trajectory.py"
    script.write_text(script.read_text() + "# a comment at the end of a rule's script\n")
    assert plan(checkout, smoke_run.work) == ({}, {})


SEPARATION_READERS = {
    # the steps whose code reaches readings.separation.roc_auc_score
    "mislabel_detection",  # readings.mislabels.mislabel_readings
    "trajectory",  # readings.trajectory via pairwise_separation_auc, the modular arithmetic's
    # structure score via knn_vote_auc
    "score_separation",  # the modular arithmetic's declared reading: task_separation
}


def test_a_change_in_separation_plans_its_readers_and_what_depends_on_them(smoke_run, checkout):
    edit(checkout / "src/losskernel/readings/separation.py",
         "return float(sklearn_roc_auc_score(positive, scores))",
         "return float(sklearn_roc_auc_score(positive, scores)) + 0.0")
    pending, changed = plan(checkout, smoke_run.work)
    assert set(changed.values()) == SEPARATION_READERS
    assert pending == forced(smoke_run.work, changed)
    assert not {"train_model", "sample_chain", "compute_kernel"} & set(pending.values())


def test_a_change_in_the_sampler_plans_sampling_and_after_never_training(smoke_run, checkout):
    sgld = checkout / "src/losskernel/method/sgld.py"
    edit(sgld, "def step(", "def step(  # a comment\n")
    assert plan(checkout, smoke_run.work) == ({}, {})
    edit(sgld, "half_step = 0.5 * config.step_size", "half_step = config.step_size / 2")
    pending, changed = plan(checkout, smoke_run.work)
    assert set(changed.values()) == {"sample_chain"}
    every_chain = {row["output_file"] for row in summary(smoke_run.work, *CONFIGS)
                   if row["rule"] == "sample_chain"}
    assert set(changed) == every_chain
    assert pending == forced(smoke_run.work, changed)
    assert not {"train_model", "input_features", "mislabel_baselines",
                "fashion_hierarchy"} & set(pending.values())


def test_a_change_in_one_task_module_replans_only_its_experiments(smoke_run, checkout):
    config = load_config([ROOT / "config/config.yaml", ROOT / "tests/smoke/overrides.yaml"])
    tiny = Plan.from_config(config, ROOT / "workflow/schemas/config.schema.yaml",
                            check_files=False)
    modular = {name for name in tiny.experiments
               if tiny.experiment(name).settings["task"] == "modular_arithmetic"}
    edit(checkout / "src/losskernel/tasks/modarith.py",
         "for index, operation in enumerate(operations):",
         "for index, operation in enumerate(operations, start=0):")
    pending, changed = plan(checkout, smoke_run.work)
    # its data (make_examples) is made where a model is trained and where a chain samples
    assert set(changed.values()) == {"train_model", "sample_chain"}
    assert {experiment_of(file) for file in changed} == modular
    assert {experiment_of(file) for file in pending} == {*modular, None}
    assert pending == forced(smoke_run.work, changed)


def test_every_output_records_the_fingerprint_of_its_code(smoke_run):
    """The record keeps the fingerprint the job ran with, beside the commit: here, the merged
    traces of a modular-arithmetic run, recomputed from this checkout."""
    record = read_provenance(smoke_run.work / "results/modarith/seed0/traces.nc")
    script = "workflow/scripts/merge_chains.py"
    assert json.loads(record["code"]) == job_code(
        ROOT / script, script, "losskernel.tasks.modarith")
    assert record["git_commit"]
