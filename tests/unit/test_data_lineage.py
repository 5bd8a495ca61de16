"""Outside data in the lineage: manifests of data files and trees (``losskernel.manifest``), made
by the workflow's step ``record_data``, re-hashed by ``losskernel provenance``; a changed byte of
a copied data file is flagged and the command exits 1."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from tests.needs import require

from losskernel import cli, manifest
from losskernel.config import ConfigError, load_config
from losskernel.pipeline.models import record_data
from losskernel.plan import Plan
from losskernel.provenance import collect_provenance, file_sha256, lineage, write_tsv
from losskernel.tasks import fashion
from losskernel.tasks.wordnet import wordnet_sources

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = "results/data/toy-data.tsv"
TREE_MANIFEST = "results/data/toy-images.tsv"
TABLE = "results/toy/table.tsv"
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def default_plan(**overrides) -> Plan:
    """The default config's plan, with top-level keys overridden."""
    return Plan.from_config({**load_config([ROOT / "config/config.yaml"]), **overrides}, SCHEMA)


def make_files(directory: Path) -> dict[str, Path]:
    """Two small data files of known content."""
    directory.mkdir(parents=True)
    files = {"labels": directory / "labels.bin", "images": directory / "images.bin"}
    files["labels"].write_bytes(bytes(range(10)) * 3)
    files["images"].write_bytes(b"\x00\x7f\xff" * 100)
    return files


def make_tree(root: Path) -> Path:
    """An ImageFolder-like tree: two class folders of three files, and a hidden file."""
    for wnid in ("n01440764", "n01443537"):
        (root / wnid).mkdir(parents=True)
        for index in range(3):
            (root / wnid / f"{wnid}_{index}.JPEG").write_bytes(f"{wnid}-{index}".encode() * 50)
    (root / ".DS_Store").write_bytes(b"not data")
    return root


def change_one_byte(path: Path) -> None:
    """Flip the first byte in place, keeping the size, as an edit would: the modification time
    becomes now (moved on by a second where a coarse file system kept it)."""
    content = bytearray(path.read_bytes())
    content[0] ^= 0xFF
    before = path.stat().st_mtime_ns
    path.write_bytes(bytes(content))
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before, before + 1_000_000_000))


def run_record_data(manifest_path: str, *, files=(), tree="", origin="config data.root = x"
                    ) -> None:
    """The workflow's step, with the record its rule would give it."""
    record = collect_provenance({"files": list(map(str, files)), "tree": str(tree)},
                                rule="record_data", wildcards={"source": "toy"},
                                inputs=list(files), workdir=ROOT)
    record_data({"files": list(map(str, files))}, {"manifest": manifest_path}, source="toy",
                origin=origin, files=[str(path) for path in files], tree=str(tree),
                tree_stamp=manifest.tree_stamp(tree) if tree else "", record=record)


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A work directory where the data's manifests are made, and a table read from them."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    files = make_files(tmp_path / "data")
    tree = make_tree(tmp_path / "images")
    run_record_data(MANIFEST, files=[files["labels"], files["images"]],
                    origin=f"config data.root = {tmp_path / 'data'}")
    run_record_data(TREE_MANIFEST, tree=tree, origin=f"config data.root = {tree}")
    record = collect_provenance({"k": 3}, rule="score", inputs=[MANIFEST, TREE_MANIFEST],
                                workdir=ROOT)
    write_tsv(pd.DataFrame({"score": [0.5]}), TABLE, record)
    return work


def test_a_manifest_lists_each_file_with_its_size_sha256_and_origin(work, tmp_path):
    files = pd.read_csv(MANIFEST, sep="\t", comment="#", keep_default_na=False)
    assert tuple(files.columns) == manifest.MANIFEST_COLUMNS
    data = tmp_path / "data"
    assert files["path"].tolist() == [str(data / "labels.bin"), str(data / "images.bin")]
    assert files["bytes"].tolist() == [30, 300]
    assert files["sha256"].tolist() == [file_sha256(data / "labels.bin"),
                                        file_sha256(data / "images.bin")]
    assert set(files["origin"]) == {f"config data.root = {data}"}  # no Debian package owns them
    assert set(files["root"]) == {""}

    tree = pd.read_csv(TREE_MANIFEST, sep="\t", comment="#", keep_default_na=False)
    images = tmp_path / "images"
    assert tree["path"].tolist() == [f"{wnid}/{wnid}_{index}.JPEG"
                                     for wnid in ("n01440764", "n01443537") for index in range(3)]
    assert set(tree["root"]) == {str(images)}
    assert tree["sha256"].tolist() == [file_sha256(images / path) for path in tree["path"]]


def test_a_debian_data_file_names_its_package_and_version():
    require("fashion_mnist")
    path = Path(fashion.DEBIAN_DIR) / "t10k-labels-idx1-ubyte.gz"
    owner = subprocess.run(["dpkg-query", "-S", str(path)], capture_output=True, text=True,
                           check=True).stdout.split(":")[0]
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", owner], capture_output=True,
                             text=True, check=True).stdout
    assert owner == fashion.DEBIAN_PACKAGE
    table = manifest.files_manifest("fashion-mnist", [path], "config data.root = x")
    assert table["origin"].tolist() == [f"Debian package {owner} {version}"]


def test_a_trees_hashes_are_reused_while_sizes_and_times_are_unchanged(tmp_path, monkeypatch):
    tree = make_tree(tmp_path / "images")
    cache = tmp_path / "cache.tsv"
    read = []
    monkeypatch.setattr(manifest, "file_sha256",
                        lambda path: read.append(Path(path).name) or file_sha256(path))
    first = manifest.tree_hashes(tree, cache)
    assert len(read) == len(first) == 6
    read.clear()
    assert manifest.tree_hashes(tree, cache) == first and read == []
    changed = tree / "n01443537" / "n01443537_1.JPEG"
    change_one_byte(changed)
    again = manifest.tree_hashes(tree, cache)
    assert read == [changed.name]
    assert [row for row in again if row not in first] == [
        ("n01443537/n01443537_1.JPEG", 50 * len("n01443537-1"), file_sha256(changed))]


def test_a_trees_stamp_changes_with_a_file_and_not_with_a_read(tmp_path):
    tree = make_tree(tmp_path / "images")
    stamp = manifest.tree_stamp(tree)
    manifest.tree_hashes(tree, None)
    assert manifest.tree_stamp(tree) == stamp
    change_one_byte(tree / "n01440764" / "n01440764_0.JPEG")
    assert manifest.tree_stamp(tree) != stamp


def test_the_lineage_ends_in_the_data_files_with_their_hashes_and_origins(work, tmp_path,
                                                                         capsys):
    nodes = lineage(TABLE)
    assert [node.path for node in nodes] == [TABLE, MANIFEST, TREE_MANIFEST]
    data = tmp_path / "data"
    assert [(check.path, check.status) for check in nodes[1].data] == [
        (str(data / "labels.bin"), "ok"), (str(data / "images.bin"), "ok")]
    assert [check.status for check in nodes[2].data] == ["ok"] * 6

    assert cli.main(["provenance", TABLE]) == 0
    out = capsys.readouterr().out
    bottom = out[out.index("data (outside files the lineage read, re-hashed now):"):]
    labels = file_sha256(data / "labels.bin")
    assert (f"  toy: 2 files (330 bytes), from config data.root = {data}; manifest "
            f"{MANIFEST}") in bottom
    assert f"    ok       {data / 'labels.bin'}  sha256 {labels[:12]}..." in bottom
    assert f"    ok       {tmp_path / 'images' / 'n01440764' / 'n01440764_0.JPEG'}" in bottom
    assert "; 8 data files checked, 0 differ;" in out.splitlines()[-1]


def test_one_changed_byte_of_a_data_file_is_flagged_and_the_command_exits_1(work, tmp_path,
                                                                           capsys):
    labels = tmp_path / "data" / "labels.bin"
    recorded = file_sha256(labels)
    change_one_byte(labels)
    assert cli.main(["provenance", TABLE]) == 1
    out = capsys.readouterr().out
    flagged = (f"CHANGED  {labels}  since: recorded sha256 {recorded[:12]}..., "
               f"now {file_sha256(labels)[:12]}...")
    assert f"    input {flagged}" in out  # the manifest's own input (a single file)
    assert f"    {flagged}" in out.split("data (outside files")[1]
    assert out.splitlines()[-1].startswith("INPUTS DIFFER: 3 artifacts, 4 inputs checked, "
                                           "1 changed, 0 missing; 8 data files checked, 1 differ")


def test_a_changed_or_added_file_of_a_tree_is_flagged_and_the_command_exits_1(work, tmp_path,
                                                                             capsys):
    images = tmp_path / "images"
    change_one_byte(images / "n01440764" / "n01440764_2.JPEG")
    (images / "n01440764" / "n01440764_9.JPEG").write_bytes(b"new")
    assert cli.main(["provenance", TABLE]) == 1
    out = capsys.readouterr().out
    assert f"    CHANGED  {images / 'n01440764' / 'n01440764_2.JPEG'}  since: " in out
    assert f"    ADDED    {images / 'n01440764' / 'n01440764_9.JPEG'}  (not in the manifest" in out
    assert out.splitlines()[-1].startswith("DATA DIFFERS: 3 artifacts, 4 inputs checked, "
                                           "0 changed, 0 missing; 9 data files checked, 2 differ")


def test_a_deleted_data_file_is_missing(work, tmp_path, capsys):
    (tmp_path / "data" / "images.bin").unlink()
    assert cli.main(["provenance", TABLE]) == 1
    assert f"    MISSING  {tmp_path / 'data' / 'images.bin'}  (recorded sha256 " in (
        capsys.readouterr().out)


def test_the_default_plans_a_manifest_of_each_data_source_for_its_readers():
    require("fashion_mnist")
    require("wordnet")
    plan = default_plan()
    assert plan.sources_of("fashion") == ["fashion-mnist"]
    assert plan.sources_of("fashion/model1") == ["fashion-mnist"]  # replicates share it
    assert plan.sources_of("digits") == ["sklearn-digits"]
    assert plan.sources_of("modarith") == []  # made from the settings alone
    assert plan.sources_of("fashion_hierarchy") == ["wordnet"]  # a data file's rule
    idx = plan.data_sources["fashion-mnist"]
    assert idx.files == tuple(f"{fashion.DEBIAN_DIR}/{name}.gz" for name in fashion.IDX_FILES)
    assert Path(fashion.DEBIAN_DIR, "train-images-idx3-ubyte.gz").is_file()


def test_two_experiments_reading_different_data_of_one_name_get_a_manifest_each(tmp_path):
    require("fashion_mnist")
    copy = tmp_path / "fashion"
    copy.mkdir()
    for name in fashion.IDX_FILES:
        (copy / f"{name}.gz").symlink_to(Path(fashion.DEBIAN_DIR) / f"{name}.gz")
    config = load_config([ROOT / "config/config.yaml"])
    fashion_only = {"fashion": config["experiments"]["fashion"],
                    "copy": {"based_on": "fashion", "data": {"root": str(copy)}}}
    plan = Plan.from_config({**config, "experiments": fashion_only, "sweeps": {}}, SCHEMA)
    assert plan.sources_of("fashion") == ["fashion-mnist"]
    assert plan.sources_of("copy") == ["fashion-mnist-copy"]
    assert plan.data_sources["fashion-mnist-copy"].files[0] == str(
        copy / "train-images-idx3-ubyte.gz")


def test_a_missing_wordnet_file_stops_the_plan_and_names_the_fix(tmp_path, monkeypatch):
    import losskernel.tasks.wordnet as wordnet

    monkeypatch.setattr(wordnet, "_find_nltk_corpus", lambda: None)
    (tmp_path / "wordnet").mkdir()
    sources = wordnet_sources({"wordnet": {"debian_dir": str(tmp_path / "wordnet")}})
    assert str(tmp_path / "wordnet" / "data.noun") in sources[0].files
    require("fashion_mnist")
    with pytest.raises(ConfigError, match=r"data of fashion_hierarchy: .*/wordnet/\S+ does not "
                                          r"exist \(config wordnet.debian_dir = .*\); sudo "
                                          r"apt-get install wordnet-base wordnet-sense-index"):
        default_plan(wordnet={"debian_dir": str(tmp_path / "wordnet")})
