"""Outside data as Snakemake inputs: an edited WordNet file reruns its manifest and the
hierarchy table made from it, and the rebuilt nltk corpus holds the changed file. The tiny
config's run: its crate, and a figure's lineage down to the Fashion-MNIST files."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import yaml
from tests.needs import require
from tests.unit.test_crate import ids, metadata
from tests.workflow.conftest import CONFIGS, snakemake, summary

from losskernel import cli
from losskernel.crate import validate_crate
from losskernel.provenance import file_sha256
from losskernel.tasks import fashion
from losskernel.tasks.wordnet import wordnet_files

HIERARCHY = "results/wordnet/fashion-mnist-hierarchy.tsv"
MANIFEST = "results/data/wordnet.tsv"


def test_a_changed_wordnet_file_reruns_its_manifest_and_the_hierarchy(tmp_path):
    require("wordnet")
    copy = tmp_path / "wordnet"
    copy.mkdir()
    for path in wordnet_files(Path("/usr/share/wordnet")):
        shutil.copy2(path, copy / path.name)
    overrides = tmp_path / "wordnet.yaml"
    overrides.write_text(yaml.safe_dump({"wordnet": {"debian_dir": str(copy),
                                                     "nltk_data": str(tmp_path / "nltk")}}))
    configs = [*CONFIGS, str(overrides)]
    work = tmp_path / "work"
    run = snakemake(HIERARCHY, "--directory", str(work), "--cores", "1", *configs)
    assert run.returncode == 0, run.stderr[-3000:]
    planned = {row["output_file"]: row for row in summary(work, HIERARCHY, *configs)}
    assert planned[MANIFEST]["plan"] == planned[HIERARCHY]["plan"] == "no update"
    listed = (work / MANIFEST).read_text()
    assert str(copy / "verb.exc") in listed

    edited = copy / "verb.exc"  # an exception list: "<inflected> <base>" per line
    edited.write_bytes(b"z" + edited.read_bytes()[1:])  # a valid line still, as an edit would be
    planned = {row["output_file"]: row for row in summary(work, HIERARCHY, *configs)}
    assert planned[MANIFEST]["plan"] == planned[HIERARCHY]["plan"] == "update pending"
    run = snakemake(HIERARCHY, "--directory", str(work), "--cores", "1", *configs)
    assert run.returncode == 0, run.stderr[-3000:]
    corpus = tmp_path / "nltk" / "corpora" / "wordnet"
    assert (corpus / "verb.exc").read_bytes() == (copy / "verb.exc").read_bytes()
    assert (work / MANIFEST).read_text() != listed


def test_the_runs_crate_has_an_action_per_job_and_passes_both_profiles(smoke_run):
    """The crate `all` ends with: one action per job that wrote a record (every rule's
    benchmark files but the crate's own and run_config's, whose YAML carries no record), the
    data files with the sha256 of the files on disk, and roc-validator's verdict, offline."""
    entities = metadata(smoke_run.work / "results/crate.zip")
    jobs = [entity for key, entity in entities.items()
            if key.startswith("#job/") and "/" not in key.removeprefix("#job/")]
    actions = Counter(ids(job["instrument"])[0].removeprefix("#rule/") for job in jobs)
    expected = {rule: count for rule, count in smoke_run.benchmarks.items()
                if rule not in ("crate", "run_config")}
    assert actions == expected
    labels = Path(fashion.DEBIAN_DIR) / "t10k-labels-idx1-ubyte.gz"
    entity = entities[labels.as_uri()]
    assert entity["sha256"] == file_sha256(labels)
    assert "Debian package dataset-fashion-mnist" in entity["description"]
    for profile in ("workflow-run-crate", "provenance-run-crate"):
        verdict = validate_crate(smoke_run.work / "results/crate.zip", profile=profile)
        assert verdict.passed, "\n".join(verdict.issues)


def test_a_figures_lineage_ends_in_the_idx_files_with_their_package(smoke_run, capsys,
                                                                   monkeypatch):
    monkeypatch.chdir(smoke_run.work)
    assert cli.main(["provenance", "results/figures/fashion/umap_hierarchy.png"]) == 0
    data = capsys.readouterr().out.split("data (outside files the lineage read")[1]
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", fashion.DEBIAN_PACKAGE],
                             capture_output=True, text=True, check=True).stdout
    assert (f"  fashion-mnist: 4 files (30,878,551 bytes), from Debian package "
            f"{fashion.DEBIAN_PACKAGE} {version}; manifest results/data/fashion-mnist.tsv") in data
    for name in fashion.IDX_FILES:
        path = Path(fashion.DEBIAN_DIR) / f"{name}.gz"
        assert f"    ok       {path}  sha256 {file_sha256(path)[:12]}..." in data
    assert "  wordnet: 15 files" in data
