"""``losskernel provenance``: reading records back from every artifact kind, tracing a figure's
lineage through a small DAG built with the real writers, and flagging inputs changed since."""

from __future__ import annotations

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
    ProvenanceError,
    canonical_json,
    collect_provenance,
    config_sha256,
    file_sha256,
    git_state,
    lineage,
    read_provenance,
    write_tsv,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = "results/toy/model.pt"
TRACES = "results/toy/seed0/traces.nc"
TABLE = "results/toy/table.tsv"
FIGURE = "results/figures/toy/roc.png"
SAMPLING = {"step_size": 1e-3, "nbeta": 1.0, "localization": 10.0}


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
    figure made from table.tsv and traces.nc (a DAG), with each artifact's record. The test
    then runs from ``tmp_path``, outside the work directory."""
    work = tmp_path / "work"
    (work / "results/toy/seed0").mkdir(parents=True)
    monkeypatch.chdir(work)  # the recorded input paths are relative to the work directory
    toy = {"experiment": "toy"}
    records = {MODEL: collect_provenance({"hidden": 8}, rule="train_model", wildcards=toy,
                                         workdir=ROOT)}
    torch.save({"task": "toy", "provenance": records[MODEL], "state_dict": {}}, MODEL)
    records[TRACES] = collect_provenance(SAMPLING, rule="sample_traces", seed=7,
                                         wildcards={**toy, "run": "seed0"}, inputs=[MODEL],
                                         workdir=ROOT)
    write_trace_file(TRACES, records[TRACES], rng)
    records[TABLE] = collect_provenance({"knn_k": 3}, rule="separation", wildcards=toy, seed=7,
                                        inputs=[TRACES], workdir=ROOT)
    write_tsv(pd.DataFrame({"obs_id": list("abc"), "score": [0.1, 0.5, 0.9]}), TABLE,
              records[TABLE])
    records[FIGURE] = collect_provenance({"figure_seed": 0}, rule="plot_roc", wildcards=toy,
                                         inputs=[TABLE, TRACES], workdir=ROOT)
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
                          "spread": [0.01], "n": [3]})
    write_tsv(table, headline, workflow.records[TABLE])
    macros_record = collect_provenance({"k": 1}, rule="paper_macros", inputs=[headline],
                                       workdir=ROOT)
    paper_macros({"headline": headline}, {"macros": tmp_path / "macros.tex"}, settings={},
                 record=macros_record)
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
    commit, dirty = git_state(ROOT)
    assert {node.git_commit for node in nodes} == {commit}
    assert {node.git_dirty for node in nodes} == {bool(dirty)}
    sampled = nodes[1]
    assert (sampled.rule, sampled.seed) == ("sample_traces", "7")
    assert sampled.config_sha256 == config_sha256(SAMPLING)
    assert sampled.config == canonical_json(SAMPLING)
    assert sampled.inputs[0].recorded_sha256 == file_sha256(work / MODEL)

    code = cli.main(["provenance", str(figure), "--workdir", str(work), "--config"])
    out = capsys.readouterr().out
    assert code == 0
    for path in (FIGURE, TRACES, MODEL, TABLE):
        assert path in out
    assert "rule sample_traces (experiment=toy, run=seed0), seed 7, config sha256 " \
           f"{config_sha256(SAMPLING)[:12]}..." in out
    assert f"commit {commit[:12]}...{'+dirty' if dirty else ''}, host " in out
    assert f"config {canonical_json(SAMPLING)}" in out
    assert f"input ok       {TRACES}  (traced above)" in out  # the table's input, shared
    assert out.splitlines()[-1].startswith(
        "all recorded inputs match: 4 artifacts, 4 inputs checked, 0 changed, 0 missing; ")
    assert "config sha256 (4): " in out.splitlines()[-1]


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
