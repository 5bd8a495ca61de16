"""The Workflow Run RO-Crate of a tiny synthetic run: its actions, files and data, and
roc-validator's verdict, offline."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from losskernel.crate import build_crate, context_path, validate_crate
from losskernel.provenance import (
    PNG_PREFIX,
    canonical_json,
    config_sha256,
    file_sha256,
    provenance_header,
    save_run_config,
    write_tsv,
)

RUN_CONFIG = {"experiments": {"toy": {"seed": 3}}}
THRESHOLD = 20_000
"""The crate's size limit in these tests: the traces (80 kB) are above it, the rest below."""

SNAKEFILE = 'include: "workflow/rules/toy.smk"\n\n\nrule all:\n    input:\n        "x"\n'
RULE = """\
rule {name}:
    benchmark:
        "results/benchmarks/{name}/{{experiment}}.tsv"
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/{name}.py"


"""
RULES = "".join(RULE.format(name=name) for name in ("record_data", "sample", "summarize", "plot"))
BENCHMARK = "s\th:m:s\tmax_rss\tcpu_time\n2.5\t0:00:02\t98.5\t1.25\n"
"""Snakemake's benchmark of the summarize job."""


def record(rule: str, created_at: str, inputs: dict[str, str], **wildcards: str) -> dict:
    """A provenance record as collect_provenance writes it, with known values."""
    return {
        "created_at": created_at, "git_commit": "a" * 40, "git_dirty": 0,
        "code": canonical_json({f"losskernel.{rule}": "c0de"}), "rule": rule,
        "wildcards": canonical_json(wildcards), "config": canonical_json({"seed": 3}),
        "settings_sha256": config_sha256({"seed": 3}),
        "config_sha256": config_sha256(RUN_CONFIG), "seed": 3,
        "input_sha256": canonical_json(inputs),
        "packages": canonical_json({"snakemake": "9.27.1", "numpy": "2.4.6"}),
        "python": "3.11.9", "host": "node7", "slurm_job_id": "",
    }


def touch(path: Path, stamp: str) -> None:
    seconds = pd.Timestamp(stamp).timestamp()
    os.utime(path, (seconds, seconds))


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run of four jobs: record_data lists an outside data file; sample reads it and
    writes traces (a large .nc); summarize reads the traces and writes a table; plot reads the
    table and draws a figure. The checkout and the working directory are one directory."""
    work = tmp_path / "work"
    (work / "workflow/rules").mkdir(parents=True)
    (work / "workflow/scripts").mkdir()
    (work / "envs").mkdir()
    (work / "Snakefile").write_text(SNAKEFILE)
    (work / "workflow/rules/toy.smk").write_text(RULES)
    (work / "workflow/scripts/summarize.py").write_text("print('summarize')\n")
    (work / "envs/analysis.yaml").write_text("dependencies: [python=3.11]\n")
    save_run_config(RUN_CONFIG, work / "results/provenance/configs")

    outside = tmp_path / "datasets/images.gz"
    outside.parent.mkdir()
    outside.write_bytes(b"idx images")
    manifest = work / "results/data/toyset.tsv"
    write_tsv(pd.DataFrame({
        "source": ["toyset"], "root": [""], "path": [str(outside)], "bytes": [10],
        "sha256": [file_sha256(outside)], "origin": ["Debian package dataset-toy 1.0-2"]}),
        manifest, record("record_data", "2026-01-01T10:00:00+00:00", {}, source="toyset"))
    touch(manifest, "2026-01-01T10:00:01Z")

    traces = work / "results/toy/traces.nc"
    traces.parent.mkdir()
    dataset = xr.Dataset({"loss": (("chain", "draw"), np.arange(10_000.0).reshape(2, 5000))})
    dataset.attrs.update(record("sample", "2026-01-01T10:01:00+00:00",
                                {str(outside): file_sha256(outside),
                                 "results/data/toyset.tsv": file_sha256(manifest)},
                                experiment="toy"))
    dataset.to_netcdf(traces)
    touch(traces, "2026-01-01T10:05:00Z")

    summary = work / "results/toy/summary.tsv"
    write_tsv(pd.DataFrame({"draws": [5000]}), summary, record(
        "summarize", "2026-01-01T10:06:00+00:00",
        {"results/toy/traces.nc": file_sha256(traces)}, experiment="toy"))
    touch(summary, "2026-01-01T10:06:30Z")
    (work / "results/benchmarks/summarize").mkdir(parents=True)
    (work / "results/benchmarks/summarize/toy.tsv").write_text(BENCHMARK)

    figure = work / "results/figures/toy.png"
    figure.parent.mkdir(parents=True)
    text = PngInfo()
    for key, value in record("plot", "2026-01-01T10:07:00+00:00",
                             {"results/toy/summary.tsv": file_sha256(summary)},
                             experiment="toy").items():
        text.add_text(f"{PNG_PREFIX}{key}", str(value))
    Image.new("RGB", (4, 4)).save(figure, pnginfo=text)
    touch(figure, "2026-01-01T10:07:10Z")
    return work


def metadata(crate: Path) -> dict[str, dict]:
    """The crate's entities by id."""
    with zipfile.ZipFile(crate) as archive:
        graph = json.loads(archive.read("ro-crate-metadata.json"))["@graph"]
    return {entity["@id"]: entity for entity in graph}


def ids(value) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [item["@id"] for item in values]


def test_crate_has_one_action_per_job_with_its_inputs_outputs_and_times(run, tmp_path):
    summary = build_crate(run, tmp_path / "run.crate.zip", max_included_bytes=THRESHOLD)
    entities = metadata(summary.path)
    jobs = {entities[i]["name"]: entities[i] for i in entities if i.startswith("#job/")
            and "/" not in i.removeprefix("#job/")}
    assert summary.actions == len(jobs) == 4
    summarize = jobs["summarize (experiment=toy)"]
    traces_uri = (run / "results/toy/traces.nc").as_uri()
    assert ids(summarize["object"]) == [traces_uri]
    assert ids(summarize["result"]) == ["results/toy/summary.tsv"]
    assert summarize["startTime"] == "2026-01-01T10:06:00+00:00"
    assert summarize["endTime"] == "2026-01-01T10:06:30+00:00"
    assert ids(summarize["instrument"]) == ["#rule/summarize"]
    assert entities["#step/summarize"]["workExample"] == {"@id": "#rule/summarize"}
    usage = {entities[i]["propertyID"]: entities[i] for i in ids(summarize["resourceUsage"])}
    assert usage["s"]["value"] == "2.5"
    assert usage["s"]["unitCode"] == {"@id": "https://qudt.org/vocab/unit/SEC"}
    assert usage["max_rss"]["value"] == "98.5" and set(usage) == {"s", "max_rss", "cpu_time"}
    assert "resourceUsage" not in jobs["plot (experiment=toy)"]  # no benchmark file
    commit = entities["#job/3/git_commit"]
    assert commit["value"] == "a" * 40 and commit["propertyID"] == "git_commit"
    assert entities[ids(summarize["location"])[0]]["name"] == "node7"
    assert ids(jobs["sample (experiment=toy)"]["object"]) == [
        (tmp_path / "datasets/images.gz").as_uri(), "results/data/toyset.tsv"]


def test_run_action_uses_the_config_and_data_and_makes_the_end_products(run, tmp_path):
    entities = metadata(build_crate(run, tmp_path / "run.crate.zip").path)
    whole = entities["#run"]
    config = f"results/provenance/configs/{config_sha256(RUN_CONFIG)}.yaml"
    assert ids(whole["instrument"]) == ["Snakefile"]
    assert ids(whole["object"]) == [config, (tmp_path / "datasets/images.gz").as_uri()]
    assert ids(whole["result"]) == ["results/figures/toy.png"]
    assert whole["startTime"] == "2026-01-01T10:00:00+00:00"
    assert whole["endTime"] == "2026-01-01T10:07:10+00:00"
    workflow = entities["Snakefile"]
    assert {"ComputationalWorkflow", "HowTo"} <= set(workflow["@type"])
    assert ids(workflow["hasPart"]) == [f"#rule/{rule}" for rule in
                                        ("plot", "record_data", "sample", "summarize")]
    assert ids(entities["#rule/summarize"]["hasPart"]) == [
        "workflow/rules/toy.smk", "workflow/scripts/summarize.py", "envs/analysis.yaml"]
    assert entities["https://pypi.org/project/snakemake/9.27.1/"]["softwareVersion"] == "9.27.1"
    assert ids(entities["#organize"]["instrument"]) == [
        "https://pypi.org/project/snakemake/9.27.1/"]


def test_file_entities_carry_the_sha256_and_the_data_its_origin(run, tmp_path):
    entities = metadata(build_crate(run, tmp_path / "run.crate.zip").path)
    figure = entities["results/figures/toy.png"]
    assert figure["sha256"] == file_sha256(run / "results/figures/toy.png")
    assert figure["contentSize"] == str((run / "results/figures/toy.png").stat().st_size)
    data = entities[(tmp_path / "datasets/images.gz").as_uri()]
    assert data["sha256"] == file_sha256(tmp_path / "datasets/images.gz")
    assert "Debian package dataset-toy 1.0-2" in data["description"]


def test_zip_holds_the_small_files_and_describes_the_large_ones(run, tmp_path):
    summary = build_crate(run, tmp_path / "run.crate.zip", max_included_bytes=THRESHOLD)
    with zipfile.ZipFile(summary.path) as archive:
        names = set(archive.namelist())
    assert {"results/figures/toy.png", "results/toy/summary.tsv", "Snakefile",
            "workflow/rules/toy.smk", "results/data/toyset.tsv"} <= names
    assert not any(name.endswith(".nc") for name in names)
    traces = metadata(summary.path)[(run / "results/toy/traces.nc").as_uri()]
    assert traces["sha256"] == file_sha256(run / "results/toy/traces.nc")
    assert summary.included == summary.files - 2  # the traces and the outside data file


def test_the_paper_pdf_is_a_result_of_the_paper_job_and_of_the_run(run, tmp_path):
    """main.pdf carries no record; the paper job's recorded output names the job."""
    figure = "results/figures/toy.png"
    header = provenance_header(record("paper", "2026-01-01T10:08:00+00:00",
                                      {figure: file_sha256(run / figure)}))
    (run / "paper/generated").mkdir(parents=True)
    (run / "paper/generated/figure-provenance.tex").write_text(
        header.replace("# ", "% ") + "\\newcommand{\\madeby}{}\n")
    (run / "paper/main.pdf").write_bytes(b"%PDF-1.5 toy")
    entities = metadata(build_crate(run, tmp_path / "run.crate.zip").path)
    paper = next(entity for key, entity in entities.items()
                 if key.startswith("#job/") and entity.get("name") == "paper (no wildcards)")
    assert ids(paper["result"]) == ["paper/generated/figure-provenance.tex", "paper/main.pdf"]
    assert ids(entities["#run"]["result"]) == ids(paper["result"])
    assert entities["paper/main.pdf"]["encodingFormat"] == "application/pdf"


def test_artifacts_select_their_lineage_only(run, tmp_path):
    summary = build_crate(run, tmp_path / "run.crate.zip",
                          artifacts=[Path("results/toy/summary.tsv")])
    entities = metadata(summary.path)
    assert summary.actions == 3  # summarize, sample, record_data; not plot
    assert "results/figures/toy.png" not in entities


def test_crate_passes_the_validator_offline_leaving_nothing(run, tmp_path, monkeypatch):
    """No network (every socket connect fails), and nothing written to the user's cache, the
    temporary directory or the validator's default cache prefix."""
    crate = build_crate(run, tmp_path / "run.crate.zip", max_included_bytes=THRESHOLD).path
    cache, scratch = tmp_path / "user-cache", tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    validator_caches = set(Path("/tmp").glob("rocrate_validator_cache*"))

    def no_network(self, address):
        raise OSError(f"the test forbids network access, asked for {address}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    verdict = validate_crate(crate, "workflow-run-crate", "REQUIRED")
    assert verdict.passed, "\n".join(verdict.issues)
    assert not cache.exists()
    assert list(scratch.iterdir()) == []
    assert set(Path("/tmp").glob("rocrate_validator_cache*")) == validator_caches


def test_a_large_data_tree_is_one_dataset_and_passes_both_profiles(run, tmp_path):
    tree = tmp_path / "imagenet/train"
    rows = []
    for name in ("n01/a.JPEG", "n01/b.JPEG", "n02/c.JPEG"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(name.encode())
        rows.append({"source": "imagenet", "root": str(tree), "path": name,
                     "bytes": len(name), "sha256": file_sha256(tree / name),
                     "origin": f"config data.root = {tree}"})
    write_tsv(pd.DataFrame(rows), run / "results/data/imagenet.tsv",
              record("record_data", "2026-01-01T10:00:02+00:00", {}, source="imagenet"))
    summary = build_crate(run, tmp_path / "run.crate.zip", max_listed_data_files=2)
    entities = metadata(summary.path)
    dataset = entities[tree.as_uri() + "/"]
    assert dataset["@type"] == "Dataset" and dataset["contentSize"] == "30"
    assert "results/data/imagenet.tsv" in dataset["description"]
    assert not any(key.endswith(".JPEG") for key in entities)
    for profile in ("workflow-run-crate", "provenance-run-crate"):
        verdict = validate_crate(summary.path, profile, "REQUIRED")
        assert verdict.passed, "\n".join(verdict.issues)


def test_validator_reads_the_context_from_the_shipped_file(run, tmp_path, monkeypatch):
    """Without the shipped context in its cache, the offline validator cannot read the crate:
    the seeded cache is what it reads, not some other copy."""
    import losskernel.crate

    crate = build_crate(run, tmp_path / "run.crate.zip").path
    monkeypatch.setattr(losskernel.crate, "seed_context_cache", lambda cache: None)
    verdict = validate_crate(crate, "workflow-run-crate", "REQUIRED")
    assert not verdict.passed
    assert any("Unable to retrieve the JSON-LD context" in issue for issue in verdict.issues)


def test_validator_finds_a_missing_required_property(run, tmp_path):
    crate = tmp_path / "broken"
    with zipfile.ZipFile(build_crate(run, tmp_path / "run.crate.zip").path) as archive:
        archive.extractall(crate)
    document = json.loads((crate / "ro-crate-metadata.json").read_text())
    for entity in document["@graph"]:
        if entity["@id"] == "#job/1":
            del entity["instrument"]
    (crate / "ro-crate-metadata.json").write_text(json.dumps(document))
    verdict = validate_crate(crate, "workflow-run-crate", "REQUIRED")
    assert not verdict.passed
    assert any("instrument" in issue for issue in verdict.issues), verdict.issues


def test_shipped_context_is_the_rocrate_1_1_context():
    document = json.loads(context_path().read_text())
    assert document["@id"] == "https://w3id.org/ro/crate/1.1/context"
    assert file_sha256(context_path()) == (
        "4a8c4cbdfd73d3d11be5ebe135f6122a0fc711fd1433e4258a748c80cc257ab7")
