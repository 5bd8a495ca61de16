"""Outside data as Snakemake inputs: an edited WordNet file reruns its manifest and the
hierarchy table made from it, and the rebuilt nltk corpus holds the changed file."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from tests.needs import require
from tests.workflow.conftest import CONFIGS, snakemake, summary

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
