"""``losskernel provenance``: reading records back from every artifact kind, tracing a figure's
lineage through a small DAG built with the real writers, and flagging inputs changed since."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from losskernel import cli, plotting
from losskernel.method import traces
from losskernel.method.chains import ChainTrace
from losskernel.method.sgld import SGLDConfig
from losskernel.pipeline.paper import paper_macros
from losskernel.provenance import (
    RECORD_KEYS,
    RUN_CONFIG_DIR,
    ProvenanceError,
    canonical_json,
    collect_provenance,
    config_sha256,
    file_sha256,
    git_state,
    lineage,
    read_provenance,
    run_config_path,
    save_run_config,
    write_tsv,
)
from losskernel.readings.summary import COMPARISON_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
MODEL = "results/toy/model.pt"
TRACES = "results/toy/seed0/traces.nc"
TABLE = "results/toy/table.tsv"
FIGURE = "results/figures/toy/roc.png"
SAMPLING = {"step_size": 1e-3, "nbeta": 1.0, "localization": 10.0}
SAMPLING_CODE = {"workflow/scripts/sample_chain.py": "0123456789abcdef",
                 "losskernel.method.sgld": "fedcba9876543210"}
RUN = {"experiments": {"toy": {"sampling": SAMPLING, "hidden": 8, "knn_k": 3}}}
"""The whole config of the run that made the toy workflow's artifacts but its model."""
EARLIER_RUN = {"experiments": {"toy": {"sampling": {**SAMPLING, "nbeta": 2.0}, "hidden": 8,
                                       "knn_k": 3}}}
"""The config of an earlier run that trained the model; the later run changed only a
sampling setting, so it did not retrain."""


def write_trace_file(path: str, record: dict, rng) -> None:
    config = SGLDConfig(step_size=1e-3, nbeta=1.0, localization=10.0, num_chains=2, num_draws=5)
    chains = {c: ChainTrace(loss=rng.random((5, 3)), batch_loss=rng.random(5),
                            distance=rng.random(5)) for c in range(2)}
    dataset = traces.make_trace_dataset(chains, rng.random(3), np.array(list("abc")), config,
                                        attrs=record)
    traces.save_traces(dataset, path)


class ToyWorkflow(NamedTuple):
    work: Path
    records: dict[str, dict]


@pytest.fixture
def workflow(tmp_path, monkeypatch, rng) -> ToyWorkflow:
    """A finished toy workflow in ``tmp_path/work``: model.pt -> traces.nc -> table.tsv, and a
    figure made from table.tsv and traces.nc (a DAG), with each artifact's record and its
    run's config saved. The model is an earlier run's (``EARLIER_RUN``), the rest ``RUN``'s.
    The test then runs from ``tmp_path``, outside the work directory."""
    work = tmp_path / "work"
    (work / "results/toy/seed0").mkdir(parents=True)
    monkeypatch.chdir(work)  # the recorded input paths are relative to the work directory
    toy = {"experiment": "toy"}
    save_run_config(EARLIER_RUN)
    records = {MODEL: collect_provenance({"hidden": 8}, run_config=EARLIER_RUN,
                                         rule="train_model", wildcards=toy, workdir=ROOT)}
    torch.save({"task": "toy", "provenance": records[MODEL], "state_dict": {}}, MODEL)
    save_run_config(RUN)
    records[TRACES] = collect_provenance(SAMPLING, run_config=RUN, rule="sample_traces", seed=7,
                                         wildcards={**toy, "run": "seed0"}, inputs=[MODEL],
                                         code=SAMPLING_CODE, workdir=ROOT)
    write_trace_file(TRACES, records[TRACES], rng)
    records[TABLE] = collect_provenance({"knn_k": 3}, run_config=RUN, rule="separation",
                                        wildcards=toy, seed=7, inputs=[TRACES], workdir=ROOT)
    write_tsv(pd.DataFrame({"obs_id": list("abc"), "score": [0.1, 0.5, 0.9]}), TABLE,
              records[TABLE])
    records[FIGURE] = collect_provenance({"figure_seed": 0}, run_config=RUN, rule="plot_roc",
                                         wildcards=toy, inputs=[TABLE, TRACES], workdir=ROOT)
    figure, axis = plt.subplots()
    axis.plot([0, 1], [0, 1])
    plotting.save_figure(figure, FIGURE, records[FIGURE])
    monkeypatch.chdir(tmp_path)
    return ToyWorkflow(work, records)


def test_read_provenance_round_trips_every_artifact_kind(workflow, tmp_path):
    work = workflow.work
    # read_provenance keeps exactly these, and a trained model's outcome
    assert (*collect_provenance(), "training") == RECORD_KEYS
    for path, record in workflow.records.items():
        assert read_provenance(work / path) == {key: str(value) for key, value in record.items()}
    headline = tmp_path / "headline.tsv"
    table = pd.DataFrame({"experiment": ["toy"], "metric": ["roc_auc"], "value": [0.9],
                          "model_spread": [0.02], "models": [3], "seed_spread": [0.01],
                          "seeds": [2], "diagnostics_passed": [True], "source": ["s"]})
    write_tsv(table, headline, workflow.records[TABLE])
    comparisons = tmp_path / "comparisons.tsv"
    write_tsv(pd.DataFrame(columns=list(COMPARISON_COLUMNS)), comparisons,
              workflow.records[TABLE])
    macros_record = collect_provenance({"k": 1}, rule="paper_macros",
                                       inputs=[headline, comparisons], workdir=ROOT)
    paper_macros({"headline": headline, "comparisons": comparisons},
                 {"macros": tmp_path / "macros.tex"}, settings={}, record=macros_record)
    expected = {key: str(value) for key, value in macros_record.items() if key != "config"}
    assert read_provenance(tmp_path / "macros.tex") == expected  # macros.tex omits the config
    assert read_provenance(headline)["rule"] == "separation"


def test_lineage_of_a_figure_names_every_artifact_commit_seed_and_config(workflow, capsys):
    work = workflow.work
    figure = work / FIGURE
    nodes = lineage(figure, workdir=work)
    # depth-first in recorded-input order; traces.nc is shared and visited once
    assert [(node.path, node.depth) for node in nodes] == [
        (str(figure), 0), (TRACES, 1), (MODEL, 2), (TABLE, 1)]
    assert [check.path for check in nodes[0].inputs] == [TRACES, TABLE]
    assert all(check.status == "ok" for node in nodes for check in node.inputs)
    head = git(ROOT, "rev-parse", "HEAD")  # git itself, not the code under test
    assert re.fullmatch("[0-9a-f]{40}", head), head
    assert {node.git_commit for node in nodes} == {head}
    dirty = bool(git(ROOT, "status", "--porcelain", "--untracked-files=no"))
    assert {node.git_dirty for node in nodes} == {dirty}
    sampled = nodes[1]
    assert (sampled.rule, sampled.seed) == ("sample_traces", "7")
    assert sampled.config_sha256 == config_sha256(RUN)
    assert (sampled.settings_sha256, sampled.settings) == (config_sha256(SAMPLING),
                                                           canonical_json(SAMPLING))
    assert sampled.inputs[0].recorded_sha256 == file_sha256(work / MODEL)
    # the model is the earlier run's: its job was not rerun, so it keeps that run's config
    assert [node.config_sha256 for node in nodes] == [
        config_sha256(RUN), config_sha256(RUN), config_sha256(EARLIER_RUN), config_sha256(RUN)]

    code = cli.main(["provenance", str(figure), "--workdir", str(work), "--show-config"])
    out = capsys.readouterr().out
    assert code == 0
    for path in (FIGURE, TRACES, MODEL, TABLE):
        assert path in out
    run, earlier = config_sha256(RUN)[:12], config_sha256(EARLIER_RUN)[:12]
    assert "rule sample_traces (experiment=toy, run=seed0), seed 7, config sha256 " \
           f"{run}..., settings sha256 {config_sha256(SAMPLING)[:12]}..." in out
    commit_text = f"commit {head[:12]}...{'+dirty' if dirty else ''}"
    # the sampling's record names its code by the sha256 of its fingerprint; the others have none
    code_sha256 = hashlib.sha256(canonical_json(SAMPLING_CODE).encode()).hexdigest()
    assert f"{commit_text}, code {code_sha256[:12]}..., host " in out
    assert out.count(f"{commit_text}, code -, host ") == 3
    assert f"code {canonical_json(SAMPLING_CODE)}" in out
    assert f"settings {canonical_json(SAMPLING)}" in out
    assert f"input ok       {TRACES}  (traced above)" in out  # the table's input, shared
    # the summary says which artifacts came from which run config, and where each config is
    summary = out.splitlines()[-6:]
    assert summary[0] == ("artifacts by run config: 2 run configs; an artifact whose job was "
                          "not rerun keeps the config of the run that made it")
    assert summary[1:3] == [f"  {earlier}...: 1 artifact: {MODEL}",
                            f"  {run}...: the other 3 artifacts"]
    assert sorted(summary[3:5]) == sorted(
        f"run config {sha[:12]}...: {work / run_config_path(sha)}"
        for sha in (config_sha256(RUN), config_sha256(EARLIER_RUN)))
    assert summary[5].startswith(
        "all recorded inputs match: 4 artifacts, 4 inputs checked, 0 changed, 0 missing; ")
    assert summary[5].endswith(
        "; run config sha256 (2): " + ", ".join(f"{sha}..." for sha in sorted([run, earlier])))


def test_an_input_changed_since_is_flagged_and_the_command_exits_1(workflow, capsys):
    work = workflow.work
    recorded = file_sha256(work / TABLE)
    with open(work / TABLE, "a") as handle:
        handle.write("d\t0.3\n")
    now = file_sha256(work / TABLE)
    nodes = lineage(work / FIGURE, workdir=work)
    flagged = [(node.path, check.path, check.status) for node in nodes for check in node.inputs
               if check.status != "ok"]
    assert flagged == [(str(work / FIGURE), TABLE, "changed")]
    assert (nodes[0].inputs[1].recorded_sha256, nodes[0].inputs[1].current_sha256) == (
        recorded, now)

    assert cli.main(["provenance", str(work / FIGURE), "--workdir", str(work)]) == 1
    out = capsys.readouterr().out
    assert (f"input CHANGED  {TABLE}  since: recorded sha256 {recorded[:12]}..., "
            f"now {now[:12]}...") in out
    assert "INPUTS DIFFER: 4 artifacts, 4 inputs checked, 1 changed, 0 missing" in out


def git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_git_state_says_why_the_commit_is_unknown(tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # no repository above either
    monkeypatch.setenv("LC_ALL", "C")  # git's messages in English
    assert git_state(outside) == (
        "unknown: git rev-parse: fatal: not a git repository (or any of the parent "
        "directories): .git", 0)
    git(outside, "init", "--quiet")
    assert git_state(outside) == ("unknown: git rev-parse: fatal: Needed a single revision", 0)
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    commit, dirty = git_state(ROOT)
    assert commit.startswith("unknown: cannot run git (") and "'git'" in commit and dirty == 0


def test_an_artifact_without_a_known_commit_is_flagged_and_the_command_exits_1(
        workflow, tmp_path, monkeypatch, capsys):
    work = workflow.work
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.chdir(work)
    record = collect_provenance({"knn_k": 3}, run_config=RUN, rule="separation",
                                inputs=[TRACES], workdir=tmp_path)  # tmp_path: not in git
    assert record["git_commit"].startswith("unknown: git rev-parse: fatal: not a git")
    write_tsv(pd.DataFrame({"obs_id": list("abc")}), TABLE, record)
    assert cli.main(["provenance", TABLE]) == 1
    out = capsys.readouterr().out
    assert ("commit UNKNOWN (git rev-parse: fatal: not a git repository (or any of the parent "
            "directories): .git), code -") in out
    assert ("CODE VERSION UNKNOWN: 3 artifacts, 2 inputs checked, 0 changed, 0 missing, "
            "1 artifact without a known commit; git commits: ") in out
    write_tsv(pd.DataFrame({"obs_id": list("abc")}), TABLE, {**record, "git_commit": ""})
    assert cli.main(["provenance", TABLE]) == 1  # an older record with an empty commit
    assert "commit UNKNOWN (none recorded)" in capsys.readouterr().out


def test_a_missing_input_is_reported_missing(workflow, capsys):
    work = workflow.work
    (work / MODEL).unlink()
    nodes = lineage(work / TRACES, workdir=work)
    assert [node.path for node in nodes] == [str(work / TRACES)]
    assert [(check.path, check.status, check.current_sha256) for check in nodes[0].inputs] == [
        (MODEL, "missing", "")]
    assert cli.main(["provenance", str(work / TRACES), "--workdir", str(work)]) == 1
    assert f"input MISSING  {MODEL}" in capsys.readouterr().out


def test_the_wrong_workdir_makes_every_input_missing(workflow, capsys):
    work = workflow.work
    assert cli.main(["provenance", str(work / FIGURE)]) == 1  # run from tmp_path, not work
    assert "0 changed, 2 missing" in capsys.readouterr().out


def test_a_file_without_a_record_is_a_clear_error(tmp_path, capsys):
    plain = tmp_path / "plain.tsv"
    pd.DataFrame({"a": [1]}).to_csv(plain, sep="\t", index=False)
    with pytest.raises(ProvenanceError, match=r"plain\.tsv holds no provenance record"):
        read_provenance(plain)
    figure = plt.figure()
    figure.savefig(tmp_path / "plain.png")
    plt.close(figure)
    assert cli.main(["provenance", str(tmp_path / "plain.png")]) == 2
    error = capsys.readouterr().err
    assert f"losskernel provenance: error: {tmp_path / 'plain.png'} holds no provenance" in error
    (tmp_path / "notes.csv").write_text("a,b\n")
    assert cli.main(["provenance", str(tmp_path / "notes.csv")]) == 2
    assert "cannot read a provenance record from a '.csv' file" in capsys.readouterr().err
    assert cli.main(["provenance", str(tmp_path / "absent.nc")]) == 2
    assert "absent.nc: no such file" in capsys.readouterr().err


def test_a_lineage_made_by_one_run_shows_one_config_and_its_file(tmp_path, monkeypatch,
                                                                  capsys):
    monkeypatch.chdir(tmp_path)
    saved = save_run_config(RUN)
    first = collect_provenance({"knn_k": 3}, run_config=RUN, rule="separation", workdir=ROOT)
    write_tsv(pd.DataFrame({"a": [1]}), "first.tsv", first)
    second = collect_provenance({"figure_seed": 0}, run_config=RUN, rule="plot",
                                inputs=["first.tsv"], workdir=ROOT)
    write_tsv(pd.DataFrame({"a": [2]}), "second.tsv", second)
    run = config_sha256(RUN)

    assert cli.main(["provenance", "second.tsv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].endswith(f"; run config sha256 (1): {run[:12]}...")
    assert not any(line.startswith(("artifacts by run config", "run config ")) for line in lines)
    assert cli.main(["provenance", "second.tsv", "--show-config"]) == 0
    assert capsys.readouterr().out.splitlines()[-2] == f"run config {run[:12]}...: {saved}"
    # a run config file edited or deleted since is flagged
    saved.write_text(saved.read_text().replace("knn_k: 3", "knn_k: 4"))
    cli.main(["provenance", "second.tsv", "--show-config"])
    assert f"{saved} (CHANGED: its content hashes to " in capsys.readouterr().out
    saved.unlink()
    cli.main(["provenance", "second.tsv", "--show-config"])
    assert f"{saved} (MISSING: " in capsys.readouterr().out


def test_an_older_record_shows_its_settings_hash_labelled_and_no_run_config(
        tmp_path, monkeypatch, capsys):
    """A record written before run configs were recorded: no settings_sha256, and its
    config_sha256 is the hash of its settings."""
    monkeypatch.chdir(tmp_path)
    older = collect_provenance({"knn_k": 3}, rule="separation", workdir=ROOT)
    older = {key: value for key, value in older.items() if key != "settings_sha256"}
    older["config_sha256"] = config_sha256({"knn_k": 3})
    write_tsv(pd.DataFrame({"a": [1]}), "older.tsv", older)
    newer = collect_provenance({"figure_seed": 0}, run_config=RUN, rule="plot",
                               inputs=["older.tsv"], workdir=ROOT)
    write_tsv(pd.DataFrame({"a": [2]}), "newer.tsv", newer)

    nodes = lineage("newer.tsv")
    assert [(node.config_sha256, node.settings_sha256, node.older_record) for node in nodes] == [
        (config_sha256(RUN), config_sha256({"figure_seed": 0}), False),
        ("", config_sha256({"knn_k": 3}), True)]
    assert nodes[1].settings == canonical_json({"knn_k": 3})
    assert cli.main(["provenance", "newer.tsv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "rule separation (no wildcards), seed -, config sha256 - (older record), settings " \
           f"sha256 {config_sha256({'knn_k': 3})[:12]}..." in lines[5]
    assert lines[-4:-1] == [
        "artifacts by run config: 1 run config and artifacts without one; an artifact whose "
        "job was not rerun keeps the config of the run that made it",
        "  none recorded: 1 artifact: older.tsv",
        f"  {config_sha256(RUN)[:12]}...: the other 1 artifact"]
    assert lines[-1].endswith(f"; run config sha256 (1): {config_sha256(RUN)[:12]}..., none "
                              "recorded for 1 artifact (1 older record: the config sha256 "
                              "recorded is the settings sha256)")
    # a lineage of older records only
    assert cli.main(["provenance", "older.tsv"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(
        "; run config sha256: none recorded (1 older record: the config sha256 recorded is the "
        "settings sha256)")


def test_the_saved_run_config_is_the_resolved_default_config_and_hashes_to_its_name(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    import yaml

    from losskernel.config import load_config
    from losskernel.plan import Plan

    config = Plan.from_config(load_config([ROOT / "config/config.yaml"]),
                              ROOT / "workflow/schemas/config.schema.yaml",
                              check_files=False).config
    directory = tmp_path / RUN_CONFIG_DIR
    # every job of a run writes the same file, several at once
    with ThreadPoolExecutor(8) as pool:
        written = set(pool.map(lambda _: save_run_config(config, directory), range(16)))
    path = directory / f"{config_sha256(config)}.yaml"
    assert written == {path} and sorted(directory.iterdir()) == [path]  # no partial file left
    assert yaml.safe_load(path.read_text()) == json.loads(canonical_json(config))
    assert config_sha256(yaml.safe_load(path.read_text())) == config_sha256(config)
    before = path.stat().st_mtime_ns
    assert save_run_config(config, directory) == path and path.stat().st_mtime_ns == before


def test_a_workflow_job_records_its_settings_and_its_runs_config(tmp_path, monkeypatch):
    """run_logged (what every rule's script runs) stamps the outputs with the hash of the run's
    config (rule run_config saves the config itself), the job's arguments being its settings."""
    from losskernel import pipeline
    from losskernel.job import Job

    def toy_step(inputs, outputs, *, knn_k, record):
        write_tsv(pd.DataFrame({"k": [knn_k]}), outputs["table"], record)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(pipeline.STEPS, "toy_step", toy_step)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # run_logged sends both to the job's log
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    job = Job(rule="separation", step="toy_step", wildcards={"experiment": "toy"}, inputs={},
              outputs={"table": "results/toy/table.tsv"}, arguments={"knn_k": 3})
    pipeline.run_logged(job, tmp_path / "job.log", 1, code_dir=ROOT, run_config=RUN)
    sys.stdout.close()
    record = read_provenance("results/toy/table.tsv")
    assert record["config_sha256"] == config_sha256(RUN)
    assert (record["config"], record["settings_sha256"]) == ('{"knn_k":3}',
                                                             config_sha256({"knn_k": 3}))
    assert not (tmp_path / "results/provenance").exists()  # a rule's output, not a job's
